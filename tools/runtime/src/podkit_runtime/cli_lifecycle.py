"""pod-runtime's lifecycle commands: create, start, wait, kill, stop, rm, cleanup, logs,
ps, inspect, attach, exec, pause, unpause (``run`` lives in cli.py). Thin glue over
``_lifecycle``, ``_exec``, ``_logs`` and ``_inspect``; registered by :func:`register`.
"""

from __future__ import annotations

import sys

import typer

from podkit_common.cli import emit, emit_lines, read_input
from podkit_runtime import cli_health as H
from podkit_runtime import cli_inspecting as I

INPUT = typer.Option("-", "--input", metavar="FILE", help="input document (default stdin)")


def _warn(lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"WARN[0000] {line}\n")


def register(app: typer.Typer) -> None:
    """Add the lifecycle commands to pod-runtime's app."""

    @app.command()
    def create(ctx: typer.Context,
               interactive: bool = typer.Option(False, "--interactive", "-i",
                                                help="keep the container's stdin open"),
               rm: bool = typer.Option(False, "--rm", help="remove when it exits"),
               stop_signal: str | None = typer.Option(None, "--stop-signal"),
               stop_timeout: int = typer.Option(10, "--stop-timeout"),
               restart: str | None = H.RESTART, health_cmd: str | None = H.HEALTH_CMD,
               health_interval: str = H.HEALTH_INTERVAL, health_retries: int = H.HEALTH_RETRIES,
               health_start_period: str = H.HEALTH_START_PERIOD,
               health_timeout: str = H.HEALTH_TIMEOUT, health_on_failure: str = H.HEALTH_ON_FAILURE,
               log_driver: str | None = I.LOG_DRIVER, log_opt: list[str] | None = I.LOG_OPT,
               input_path: str = INPUT) -> None:
        """Create the container of the input document under conmon (runc create)."""
        from podkit_common.schemas import SchemaSet
        from podkit_runtime._lifecycle import CreateOptions, create
        from podkit_runtime._run import stdio_for_cli

        doc = read_input(input_path)
        SchemaSet(["podkit_runtime"]).validate(doc, "urn:podkit:runtime:run-input")
        emit(create(doc, ctx.obj.roots, CreateOptions(
            stdin=interactive, remove=rm, stop_signal=stop_signal, stop_timeout=stop_timeout,
            passthrough_stdio=stdio_for_cli(interactive),  # stdout is for the document
            **H.create_extras(locals()), **I.log_extras(locals()))))

    @app.command()
    def start(ctx: typer.Context,
              container: str | None = typer.Argument(None, help="id or name (else stdin)"),
              input_path: str = INPUT) -> None:
        """Start a created container (runc start)."""
        from podkit_runtime._lifecycle import start as start_container

        emit(start_container(ctx.obj.roots, _ref(container, input_path)))

    @app.command()
    def wait(ctx: typer.Context, container: str = typer.Argument(...),
             condition: list[str] | None = typer.Option(None, "--condition",
                                                        help="stopped|exited|running|..."),
             ) -> int:
        """Wait for the container to reach a condition (default: exited); prints the
        document, exits 0."""
        from podkit_runtime._lifecycle import document
        from podkit_runtime._lifecycle import wait as wait_container

        record, seen = wait_container(ctx.obj.roots, container, condition or ("exited",))
        emit(document(record, seen, False))
        return 0

    @app.command()
    def kill(ctx: typer.Context, container: str = typer.Argument(...),
             signal: str = typer.Option("SIGKILL", "--signal", "-s")) -> None:
        """Send a signal to the container (default SIGKILL, like podman kill)."""
        from podkit_runtime._lifecycle import kill as kill_container

        emit(kill_container(ctx.obj.roots, container, signal))

    @app.command()
    def stop(ctx: typer.Context, container: str = typer.Argument(...),
             time_: int | None = typer.Option(None, "--time", "-t",
                                              help="seconds before SIGKILL (default 10)"),
             stop_signal: str | None = typer.Option(None, "--stop-signal")) -> None:
        """Stop the container: its stop signal, then SIGKILL after --time seconds."""
        from podkit_runtime._lifecycle import stop as stop_container

        doc = stop_container(ctx.obj.roots, container, time_, stop_signal)
        _warn(doc.pop("warnings", []))
        emit(doc)

    @app.command()
    def attach(ctx: typer.Context, container: str = typer.Argument(...),
               no_stdin: bool = typer.Option(False, "--no-stdin"),
               detach_keys: str | None = typer.Option(None, "--detach-keys",
                                                      help="default ctrl-p,ctrl-q")) -> int:
        """Attach to a running container: its output on stderr (stdout carries the
        document), our stdin to it; exits with its code, or 0 after the detach keys."""
        from podkit_runtime import attach_container

        doc = attach_container(ctx.obj.roots, container, stdio=(0, 2, 2),
                               stdin=not no_stdin, detach_keys=detach_keys)
        emit(doc)
        return 0 if doc["detached"] else int(doc["state"]["exit_code"] or 0)

    @app.command("exec", context_settings={"allow_interspersed_args": False})
    def exec_(ctx: typer.Context, container: str = typer.Argument(...),
              command: list[str] = typer.Argument(..., help="command and arguments"),
              interactive: bool = typer.Option(False, "--interactive", "-i"),
              tty: bool = typer.Option(False, "--tty", "-t"),
              detach: bool = typer.Option(False, "--detach", "-d"),
              env: list[str] | None = typer.Option(None, "--env", "-e"),
              workdir: str | None = typer.Option(None, "--workdir", "-w"),
              user: str | None = typer.Option(None, "--user", "-u")) -> int:
        """Run a command in a running container through conmon; its output on stderr
        (stdout carries the document); exits with the command's code."""
        from podkit_runtime._exec import ExecOptions, exec_in
        from podkit_runtime._run import ContainerCannotStart

        opts = ExecOptions(command=tuple(command), env=tuple(env or ()), workdir=workdir,
                           user=user, stdin=interactive, detach=detach, tty=tty)
        try:
            doc = exec_in(ctx.obj.roots, container, opts, stdio=(0, 2, 2))
        except ContainerCannotStart as exc:
            from podkit_common.cli import fail

            fail("pod-runtime", exc)
            return exc.run_exit_code
        emit(doc)
        code = doc["exec"]["exit_code"]
        return 0 if code is None else int(code)

    @app.command()
    def pause(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """Freeze the container's processes (runc pause)."""
        from podkit_runtime import pause_container

        emit(pause_container(ctx.obj.roots, container))

    @app.command()
    def unpause(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """Thaw a paused container (runc resume)."""
        from podkit_runtime import unpause_container

        emit(unpause_container(ctx.obj.roots, container))

    @app.command("rm")
    def rm_(ctx: typer.Context, container: str = typer.Argument(...),
            force: bool = typer.Option(False, "--force", "-f", help="stop it first"),
            time_: int | None = typer.Option(None, "--time", "-t")) -> None:
        """Remove a container's runtime state (runc state, bundle, conmon files, log)."""
        from podkit_runtime._lifecycle import remove

        emit(remove(ctx.obj.roots, container, force=force, timeout=time_))

    @app.command()
    def cleanup(ctx: typer.Context, container: str = typer.Argument(...),
                rm: bool = typer.Option(False, "--rm", help="remove the container too")
                ) -> None:
        """conmon's exit command: record the exit code, runc delete (and --rm)."""
        from podkit_runtime._command_bodies import cleanup_body  # also the fast path

        cleanup_body(ctx.obj, {"container": container, "rm": rm})

    @app.command()
    def logs(ctx: typer.Context, container: str = typer.Argument(...),
             follow: bool = typer.Option(False, "--follow", "-f"),
             tail: int = typer.Option(-1, "--tail", help="last N lines (-1: all)"),
             since: str | None = typer.Option(None, "--since"),
             until: str | None = typer.Option(None, "--until"),
             timestamps: bool = typer.Option(False, "--timestamps", "-t")) -> None:
        """Print the container's log like podman logs: its stdout on stdout, its stderr
        on stderr (raw bytes, not JSON)."""
        from podkit_runtime._logs import container_log, parse_time_filter

        entries = container_log(ctx.obj.roots, container, follow=follow,
                                tail=None if tail < 0 else tail,
                                since_ns=parse_time_filter(since) if since else None,
                                until_ns=parse_time_filter(until) if until else None)
        for entry in entries:
            stream = sys.stderr if entry.stream == "stderr" else sys.stdout
            stream.buffer.write(entry.render(timestamps))
            stream.flush()

    @app.command()
    def ps(ctx: typer.Context, all_: bool = typer.Option(False, "--all", "-a"),
           fmt: str = typer.Option("json", "--format",
                                   help="json (JSON lines) | table | Go template"),
           filter_: list[str] | None = typer.Option(None, "--filter", "-f", help="KEY=VALUE")
           ) -> None:
        """List containers: running ones, or all with --all (JSON lines)."""
        from podkit_runtime._inspect import ps as ps_lines
        from podkit_runtime._inspect import table
        from podkit_runtime._ps_filter import ps_output, wants_all

        lines, text = ps_output(ctx.obj.roots, ps_lines(ctx.obj.roots,
                                                        all_=wants_all(all_, filter_)),
                                filter_, fmt)
        if text is not None:
            sys.stdout.write(text)
            return
        if fmt == "table":
            sys.stdout.write(table(lines))
            return
        emit_lines(lines)

    @app.command()
    def inspect(ctx: typer.Context, container: str = typer.Argument(...)) -> None:
        """podman-shaped JSON about one container."""
        from podkit_runtime._inspect import inspect as inspect_container

        emit(inspect_container(ctx.obj.roots, container))


def _ref(container: str | None, input_path: str) -> str:
    if container:
        return container
    container = read_input(input_path).get("container")
    ref = container.get("id") if isinstance(container, dict) else None
    if not isinstance(ref, str) or not ref:
        from podkit_common.errors import InvalidDocument

        raise InvalidDocument("input document has no container.id (a string)")
    return ref


def options(interactive: bool, rm: bool, extras: dict | None = None) -> object:
    """``CreateOptions`` for ``pod-runtime run`` (``extras``: H.create_extras)."""
    from podkit_runtime._lifecycle import CreateOptions

    return CreateOptions(stdin=interactive, remove=rm, **(extras or {}))
