"""Lazily built subcommands: the same help and behaviour as typer's eager build, and a
start that builds only the command it runs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import typer
import typer.main as tm
from typer import _click as click

from podkit_common.lazy_commands import LazyCommands, lazy_group

TOOLS = {"pod": "podkit_pod.cli", "pod-runtime": "podkit_runtime.cli",
         "pod-netsetup": "podkit_netsetup.cli", "pod-storage": "podkit_storage.cli",
         "pod-image-pull": "podkit_image_pull.cli"}


def _all_help(command: click.Command, name: str) -> dict[str, str]:
    """Every command's --help text, subgroups included, keyed by its path."""
    ctx = click.Context(command, info_name=name)
    out = {name: command.get_help(ctx)}
    for sub_name in getattr(command, "list_commands", lambda _c: [])(ctx):
        sub = command.get_command(ctx, sub_name)
        assert sub is not None, f"{name} lists {sub_name} but cannot build it"
        for key, text in _all_help(sub, sub_name).items():
            out[f"{name} {key}"] = text
    return out


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_lazy_help_equals_typer_eager_help(tool: str) -> None:
    app = importlib.import_module(TOOLS[tool]).app
    eager, lazy = _all_help(tm.get_command(app), tool), _all_help(lazy_group(app), tool)
    assert list(lazy) == list(eager)
    assert lazy == eager


def test_only_the_invoked_command_is_built() -> None:
    built: list[str] = []
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _globals() -> None:
        pass

    @app.command()
    def first(n: int = typer.Option(1, "--n")) -> None:
        built.append(f"first {n}")

    @app.command("second-one")
    def second() -> None:
        built.append("second")

    sub = typer.Typer()

    @sub.command()
    def inner() -> None:
        built.append("inner")

    app.add_typer(sub, name="grp")
    group = lazy_group(app)
    assert isinstance(group.commands, LazyCommands)
    assert sorted(group.commands) == ["first", "grp", "second-one"]
    assert group.commands._built == {}  # listing names builds nothing
    group.main(["first", "--n", "3"], standalone_mode=False)
    assert built == ["first 3"]
    assert set(group.commands._built) == {"first"}
    group.main(["grp", "inner"], standalone_mode=False)
    assert built == ["first 3", "inner"]


def test_unknown_command_is_a_usage_error() -> None:
    app = importlib.import_module("podkit_pod.cli").app
    with pytest.raises(click.exceptions.UsageError) as info:
        lazy_group(app).main(["no-such-verb"], standalone_mode=False)
    assert "No such command" in info.value.message


def test_mapping_behaves_like_a_dict() -> None:
    cmds = LazyCommands({"a": lambda: "A", "b": lambda: "B"})
    assert "a" in cmds and "z" not in cmds and len(cmds) == 2
    cmds["c"] = "C"
    del cmds["a"]
    assert dict(cmds) == {"b": "B", "c": "C"}
    with pytest.raises(KeyError):
        cmds["a"]


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["volume", "ls", "--help"]])
def test_pod_help_from_the_installed_executable(args: list[str]) -> None:
    out = subprocess.run(["pod", *args], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Usage: pod")
    if args == ["--help"]:
        for verb in ("run", "pull", "ps", "rm", "volume", "exec"):
            assert f"\n  {verb} " in out.stdout


HEAVY = ("httpx", "jsonschema", "pyroute2", "rich", "tomllib", "concurrent", "ctypes")


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_version_loads_no_stage_internals_and_no_heavy_library(tool: str) -> None:
    """`--version` stays a cold start of the CLI alone: no private stage module (``._x``)
    and none of the heavy libraries get imported."""
    code = ("import contextlib, io, sys\n"
            f"sys.argv = [{tool!r}, '--version']\n"
            f"from {TOOLS[tool]} import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    with contextlib.suppress(SystemExit):\n"
            "        main()\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert "podkit_common.cli" in out  # the probe really ran the CLI
    loaded = [m for m in out if m.split(".")[0] in HEAVY
              or (m.startswith("podkit_") and "._" in m)]
    assert loaded == []
