"""`pod`'s fast argv path (podkit_pod.fast_path + podkit_common.fastargs): the committed
spec is what the typer declarations generate; the fast parse gives the very keyword
arguments typer gives, and hands every doubtful command line back to typer; the hot
commands and every tool's --version run without importing typer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podkit_common import argspec, fastargs
from podkit_common.cli_base import normalize_bool_flags, rewrite_argv
from podkit_pod import fast_path as _main
from podkit_pod.cli import app
from podkit_runtime import fast_path as runtime_fast
from podkit_runtime.cli import app as runtime_app
from tests.testbed.env import venv_bin

HOT = ["run", "create", "ps", "start", "cleanup", "images",
       # pods: tests/pod/test_pod_fast_path.py compares their parses with typer's
       "pod create", "pod start", "pod stop", "pod rm", "pod ps", "pod ls", "pod inspect"]
#: tool -> (its typer app and module, its FastPath, the commands its spec covers)
FAST_PATHS = {"pod": (app, "podkit_pod.cli", _main.FAST, HOT),
              "pod-runtime": (runtime_app, "podkit_runtime.cli", runtime_fast.FAST,
                              ["cleanup"])}


@pytest.mark.parametrize("tool", sorted(FAST_PATHS))
def test_committed_spec_is_what_the_typer_declarations_generate(tool: str) -> None:
    typer_app, module, fast, commands = FAST_PATHS[tool]
    regenerated = argspec.render(argspec.app_spec(typer_app, tool, commands))
    assert Path(fast.spec_file).read_text() == regenerated, (
        f"regenerate: python -m podkit_common.argspec {module}:app "
        f"{' '.join(commands)} > {fast.spec_file}")
    assert set(fast.bodies) == set(commands)


def test_run_and_create_share_one_declaration() -> None:
    spec = _main.load_spec()["commands"]
    run_opts, create_opts = set(spec["run"]["options"]), set(spec["create"]["options"])
    assert run_opts - create_opts == {"--detach", "-d"}
    assert create_opts <= run_opts


def _typer(argv: list[str], tool: str = "pod") -> tuple[str, dict[str, Any], dict[str, Any]]:
    """typer's reading of ``argv``: (command, global options, command parameters)."""
    typer_app, _module, fast, _commands = FAST_PATHS[tool]
    args = normalize_bool_flags(list(argv), fast.bool_flags)
    args = rewrite_argv(args, set(fast.spec()["commands"]), None,
                        set(fast.positional_ends_options))
    glob: dict[str, Any] = {"root": None, "runroot": None, "progress_mode": "auto",
                            "quiet": False}
    i = 0
    while args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        if name in ("-q", "--quiet"):
            glob["quiet"] = True
            i += 1
            continue
        if not eq:
            value, i = args[i + 1], i + 1
        glob["progress_mode" if name == "--progress" else name[2:]] = value
        i += 1
    return args[i], glob, argspec.typer_params(typer_app, args[i], args[i + 1:])


IMG = "127.0.0.1:5000/busybox:latest"
SAME: list[list[str]] = [
    ["run", IMG],
    ["run", "--rm", "--network", "none", IMG, "/bin/sh", "-c", "true"],
    ["run", "--rm", "--net=none", IMG, "sh", "-c", "echo $A", "--rm", "-e", "X"],
    ["run", "-it", "-e", "A=1", "-eB=2", "--env=C=3", "-v", "/a:/b:ro", IMG],
    ["run", "-dit", "--name", "web", "-p", "127.0.0.1:8080:80", "-p", "9090:90", IMG,
     "httpd", "-f"],
    ["--root", "/tmp/r", "run", "--runroot=/tmp/rr", "-q", IMG, "ls", "-l", "--root", "x"],
    ["--progress", "json", "run", IMG],
    ["run", "--tls-verify=false", IMG], ["run", "--tls-verify", IMG],
    ["run", "--no-tls-verify", IMG],
    ["run", "--health-retries", "5", "--health-cmd", "true", IMG],
    ["run", "--name", "-dash-", IMG],
    ["run", "--", IMG, "--rm"],
    ["run", "-e", "--", IMG],
    ["run", "--label", "a=b", "-l", "c=d", "--annotation", "x=y", "--cpus=1.5", IMG],
    ["run", "--privileged", "--cap-add", "ALL", "--security-opt", "seccomp=unconfined", IMG],
    ["run", "--entrypoint", "", IMG, "-"],
    ["create", "--name", "c1", "-t", "-i", "--rm", IMG, "sh"],
    ["create", "--restart", "on-failure:3", "--log-opt", "max-size=1k", IMG],
    ["create", IMG, "-d"],
    ["ps"], ["ps", "-a"], ["ps", "-q"], ["--root", "/x", "ps", "--all", "--runroot", "/y"],
    ["ps", "-aq", "--filter", "label=a=b", "-f", "status=exited"],
    ["ps", "--format", "{{.ID}} {{.Names}}", "--no-trunc", "--noheading"],
    ["ps", "-n", "3", "--sort=names", "--pod"], ["ps", "-an2"], ["ps", "--format=json", "-l"],
    ["start", "c1"], ["start", "c1", "c2"], ["start", "--", "-odd-name"],
    ["cleanup", "abc"], ["cleanup", "--rm", "abc"], ["--root", "/r", "cleanup", "abc"],
    ["images"], ["images", "-a", "--digests"], ["images", "-q"], ["-q", "images"],
    ["images", "--format", "json"], ["images", "--filter", "dangling=true", "-f", "label=a"],
    ["images", "busybox", "--sort", "size", "-n", "--no-trunc"], ["images", "-aqn"],
]
SAME_RUNTIME: list[list[str]] = [
    ["cleanup", "abc"], ["cleanup", "--rm", "abc"],
    ["--root", "/r", "cleanup", "abc", "--runroot", "/q"], ["cleanup", "abc", "--rm"],
]
CASES = [("pod", a) for a in SAME] + [("pod-runtime", a) for a in SAME_RUNTIME]


@pytest.mark.parametrize(("tool", "argv"), CASES, ids=[f"{t}: {' '.join(a)}" for t, a in CASES])
def test_fast_parse_equals_typer(tool: str, argv: list[str]) -> None:
    parsed = FAST_PATHS[tool][2].parse(argv)
    assert parsed is not None, "the fast path gave up on a command line it should take"
    command, glob, params = _typer(argv, tool)
    assert parsed.command == command
    assert {k: getattr(parsed.globals, k) for k in glob} == glob
    assert parsed.params == params


DOUBT: list[list[str]] = [
    ["run", "--help"], ["run", "--nope", IMG], ["run", "-Z", IMG], ["run", "-itZ", IMG],
    ["run", "--name"], ["run"], ["run", "--rm"], ["run", "--rm=yes", IMG],
    ["run", "--health-retries", "many", IMG],
    ["create", "-d", IMG],  # create has no --detach
    ["--progress", "loud", "run", IMG], ["--root"], ["--version", "run", IMG],
    ["--help"], ["image", "ls"], ["images", "a", "b"], ["images", "--sort"],
    ["nosuchcommand", IMG],
    ["start"], ["start", "-i", "c1"], ["ps", "-n", "x"], ["ps", "--format"], ["ps", "extra"],
    ["ps", "--help"], ["ps", "-x"], ["cleanup"], ["cleanup", "--rm=1", "x"], ["cleanup", "a", "b"],
]


@pytest.mark.parametrize("argv", DOUBT, ids=[" ".join(a) for a in DOUBT])
def test_doubtful_command_lines_go_to_typer(argv: list[str]) -> None:
    assert _main.parse(argv) is None


def test_completion_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_POD_COMPLETE", "bash_complete")
    assert _main.parse(["run", IMG]) is None
    assert fastargs.completion_requested()


TOOLS = ["pod", "pod-image-pull", "pod-storage", "pod-runtime", "pod-netsetup"]


def _imports(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    res = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True,
                         text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    modules = {line.split("|")[-1].strip() for line in res.stderr.splitlines()
               if line.startswith("import time:")}
    return res.returncode, res.stdout, modules


@pytest.mark.parametrize("tool", TOOLS)
def test_version_is_typers_answer_without_typer(tool: str) -> None:
    code, out, modules = _imports([str(venv_bin() / tool), "--version"])
    assert code == 0
    package = "podkit_pod" if tool == "pod" else "podkit_" + tool[4:].replace("-", "_")
    typer_path = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv = ['{tool}', '--version']; "
                               f"from {package}.cli import main; main()"],
        capture_output=True, text=True, timeout=60)
    assert typer_path.returncode == 0
    assert out == typer_path.stdout == f"{tool} version 0.1.0\n"
    assert not {m for m in modules if m == "typer" or m.startswith("typer.")}


def test_a_usage_error_still_comes_from_typer(tmp_path: Path) -> None:
    res = subprocess.run([str(venv_bin() / "pod"), "run", "--nope", IMG], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 125  # podman's code for its own errors
    assert "No such option: --nope" in res.stderr
    res = subprocess.run([str(venv_bin() / "pod"), "run", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "Usage: pod run" in res.stdout and "--detach" in res.stdout
    res = subprocess.run([str(venv_bin() / "pod"), "create", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "Usage: pod create" in res.stdout
    assert "--detach" not in res.stdout


def test_an_engine_error_on_the_fast_path_is_the_envelope_and_125(tmp_path: Path) -> None:
    """A missing local image (oci: transport, nothing fetched) fails inside the command
    body: the same JSON error line and podman's 125 as on the typer path."""
    from tests.testbed.env import make_env

    env = make_env(tmp_path / "root", tmp_path / "run")
    code, _out, modules = _imports([str(venv_bin() / "pod"), "run", "--rm",
                                    f"oci:{tmp_path}/none:latest", "true"], env)
    assert code == 125
    assert "typer" not in modules
    res = subprocess.run([str(venv_bin() / "pod"), "run", "--rm",
                          f"oci:{tmp_path}/none:latest", "true"], capture_output=True,
                         text=True, timeout=60, env=env)
    import json

    error = json.loads(res.stderr.strip().splitlines()[-1])["error"]
    assert error["tool"] == "pod" and error["type"] == "NotFound"


HOT_LINES = [(["pod", "ps", "-a"], 0), (["pod", "start", "nosuch"], 125), (["pod", "images"], 0),
             (["pod", "cleanup", "nosuch"], 0), (["pod-runtime", "cleanup", "--rm", "nosuch"], 0)]


@pytest.mark.parametrize(("argv", "code"), HOT_LINES, ids=[" ".join(a) for a, _ in HOT_LINES])
def test_hot_commands_run_without_typer(argv: list[str], code: int, tmp_path: Path) -> None:
    """The exit command conmon runs after every container, `ps`, `start`: no typer, and
    the exit code the typer path gives (podman's 125 for `pod`'s own errors)."""
    from tests.testbed.env import make_env

    env = make_env(tmp_path / "root", tmp_path / "run")
    got, _out, modules = _imports([str(venv_bin() / argv[0]), *argv[1:]], env)
    assert got == code
    assert "typer" not in modules
