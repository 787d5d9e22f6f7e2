"""`pod pod create|start|stop|rm|ps|ls|inspect` on the typer-free fast path
(podkit_pod.fast_path, podkit_pod._pod_commands): the fast parse gives typer's very
keyword arguments for a group's verb, doubtful command lines still go to typer, and a
3-member pod is created, filled, started, listed, stopped and removed with real conmon,
runc and overlayfs without ever importing typer."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from podkit_common import argspec, jsonio
from podkit_common.cli_base import normalize_bool_flags, rewrite_argv
from podkit_pod import fast_path
from podkit_pod.cli import app
from podkit_pod.cli import app as typer_app
from tests.testbed.env import venv_bin

POD_COMMANDS = ("create", "start", "stop", "rm", "ps", "ls", "inspect")


def _typer(argv: list[str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """typer's reading of ``argv`` (a `pod pod VERB` line): (command, globals, params)."""
    args = normalize_bool_flags(list(argv), fast_path.BOOL_FLAGS)
    args = rewrite_argv(args, {"pod", "run"}, None, set(fast_path.POSITIONAL_ENDS_OPTIONS))
    glob: dict[str, Any] = {"root": None, "runroot": None, "quiet": False}
    i = 0
    while args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        if name in ("-q", "--quiet"):
            glob["quiet"] = True
            i += 1
            continue
        if not eq:
            value, i = args[i + 1], i + 1
        glob[name[2:]] = value
        i += 1
    assert args[i] == "pod"
    command = f"pod {args[i + 1]}"
    return command, glob, argspec.typer_params(typer_app, command, args[i + 2:])


SAME: list[list[str]] = [
    ["pod", "create"], ["pod", "create", "--name", "web", "--network", "none"],
    ["pod", "create", "-n", "w", "--share", "+pid", "-l", "a=b", "--label=c=d",
     "--infra-name", "w-infra", "--exit-policy", "stop", "--hostname", "h"],
    ["pod", "create", "--name", "w", "-p", "127.0.0.1:8080:80", "-p", "9090:90",
     "--add-host", "db:10.0.0.2", "--dns", "1.1.1.1", "--dns-search", "x", "--net", "none"],
    ["pod", "create", "--infra=false", "--name", "w"],
    ["pod", "create", "--infra-command", '["/catatonit", "-P"]', "--cpus", "0.5", "-m", "64m"],
    ["--root", "/r", "pod", "create", "--runroot", "/q", "--name", "w"],
    ["pod", "start", "web"], ["pod", "start", "a", "b"], ["pod", "start", "--", "-odd"],
    ["pod", "stop", "web"], ["pod", "stop", "-t", "0", "web"], ["pod", "stop", "--time=3", "a"],
    ["pod", "rm", "web"], ["pod", "rm", "-f", "-t", "0", "a", "b"], ["pod", "rm", "--force", "a"],
    ["pod", "ps"], ["pod", "ps", "--format", "json"], ["pod", "ps", "--no-trunc", "-n"],
    ["pod", "ps", "-f", "name=web", "--filter", "status=running"], ["pod", "ls", "-q"],
    ["pod", "ps", "--format={{.Name}} {{.Status}}", "--noheading"],
    ["pod", "inspect", "web"], ["pod", "inspect", "-f", "{{.Name}}", "web"],
]


@pytest.mark.parametrize("argv", SAME, ids=[" ".join(a) for a in SAME])
def test_fast_parse_of_pod_verbs_equals_typer(argv: list[str]) -> None:
    parsed = fast_path.parse(argv)
    assert parsed is not None, "the fast path gave up on a command line it should take"
    command, glob, params = _typer(argv)
    assert parsed.command == command
    assert {k: getattr(parsed.globals, k) for k in glob} == glob
    assert parsed.params == params
    assert parsed.command in fast_path.FAST.bodies


DOUBT: list[list[str]] = [
    ["pod"], ["pod", "--help"], ["pod", "create", "--help"], ["pod", "create", "--nope"],
    ["pod", "start"], ["pod", "inspect"], ["pod", "inspect", "a", "b"],
    ["pod", "stop", "-t", "soon", "web"], ["pod", "kill", "web"], ["pod", "restart", "web"],
    ["pod", "logs", "web"], ["pod", "exists", "web"], ["pod", "nosuchverb"],
    ["pod", "create", "--name"],
]


@pytest.mark.parametrize("argv", DOUBT, ids=[" ".join(a) for a in DOUBT])
def test_doubtful_pod_lines_go_to_typer(argv: list[str]) -> None:
    parsed = fast_path.parse(argv)
    assert parsed is None or parsed.command not in fast_path.FAST.bodies


def test_every_fast_pod_verb_is_a_typer_command() -> None:
    groups = {g.name: g.typer_instance for g in app.registered_groups}
    names = {c.name or c.callback.__name__ for c in groups["pod"].registered_commands}
    assert {f"pod {v}" for v in POD_COMMANDS} == {c for c in fast_path.FAST.bodies
                                                  if c.startswith("pod ")}
    assert set(POD_COMMANDS) <= names


def _pod(env: dict[str, str], *args: str) -> tuple[int, str, str, set[str]]:
    res = subprocess.run([sys.executable, "-X", "importtime", str(venv_bin() / "pod"), *args],
                         capture_output=True, text=True, timeout=120, env=env,
                         stdin=subprocess.DEVNULL)
    modules = {line.split("|")[-1].strip() for line in res.stderr.splitlines()
               if line.startswith("import time:")}
    errors = "\n".join(line for line in res.stderr.splitlines()
                       if not line.startswith("import time:"))
    return res.returncode, res.stdout, errors, modules


def _typer_free(env: dict[str, str], *args: str, code: int = 0) -> str:
    got, out, err, modules = _pod(env, *args)
    assert got == code, (args, err)
    assert not {m for m in modules if m == "typer" or m.startswith("typer.")}, args
    return out


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.runc
@pytest.mark.registry
def test_a_three_member_pod_on_the_fast_path(podkit_env: dict[str, str], images) -> None:
    import shutil

    for tool in ("conmon", "catatonit"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}: apt-get install {tool}")
    ref = images.ref("busybox:latest").removeprefix("docker://")
    env = podkit_env
    pod_id = _typer_free(env, "pod", "create", "--name", "fp", "--network", "none").strip()
    assert len(pod_id) == 64
    assert _typer_free(env, "pod", "create", "--name", "fp", code=125) == ""  # name in use
    members = []
    for i in range(3):
        out = _typer_free(env, "create", "--tls-verify=false", "--pod", "fp", "--name",
                          f"fp-{i}", ref, "sleep", "1000")
        members.append(out.strip())
    assert _typer_free(env, "pod", "start", "fp") == pod_id + "\n"
    info = jsonio.loads(_typer_free(env, "pod", "inspect", "fp"))
    assert info["State"] == "Running"
    assert sorted(c["State"] for c in info["Containers"]) == ["running"] * 4
    assert set(members) < {c["Id"] for c in info["Containers"]}
    assert _typer_free(env, "pod", "ps", "-q", "--no-trunc") == pod_id + "\n"
    rows = jsonio.loads(_typer_free(env, "pod", "ps", "--format", "json"))
    assert [(r["Name"], r["Status"]) for r in rows] == [("fp", "Running")]
    assert _typer_free(env, "pod", "start", "nosuch", code=125) == ""
    assert _typer_free(env, "pod", "stop", "-t", "0", "fp") == pod_id + "\n"
    info = jsonio.loads(_typer_free(env, "pod", "inspect", "fp"))
    assert info["State"] == "Exited"
    assert _typer_free(env, "pod", "rm", "fp") == pod_id + "\n"
    assert _typer_free(env, "pod", "ls", "-q") == ""
    assert _typer_free(env, "ps", "-aq") == ""


# -- pod start's order and podman's errors (unit: the container starts are the seam) -------

def _pod_record(roots: Any, name: str, members: list[str]) -> dict[str, Any]:
    from podkit_runtime import _pod_record as R

    record = R.new_record(R.PodOptions(name=name), set())
    record["infra"]["id"] = "f" * 64
    record["members"] = members
    R.save(roots, record)
    return record


@pytest.fixture
def fake_starts(tmp_path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str], set[str]]:
    """Roots with no real containers; ``_start_one`` records the order it is called in
    and fails for the ids in the returned set."""
    from podkit_common import errors
    from podkit_common.roots import Roots
    from podkit_runtime import _pods

    roots = Roots(tmp_path / "root", tmp_path / "run")
    calls: list[str] = []
    failing: set[str] = set()

    def start_one(_roots: Any, cid: str, _prepare: Any) -> bool:
        calls.append(cid)
        if cid in failing:
            raise errors.RuntimeFailure("runc start failed: boom")
        return True

    monkeypatch.setattr(_pods, "_start_one", start_one)
    monkeypatch.setattr(_pods, "report", lambda _r, pod, changed: {"changed": changed,
                                                                   "pod": {"id": pod["id"]}})
    return roots, calls, failing


def test_pod_start_starts_the_infra_first_then_every_member(fake_starts) -> None:
    from podkit_runtime._pods import start_pod

    roots, calls, _failing = fake_starts
    members = [c * 64 for c in "abc"]
    record = _pod_record(roots, "p", members)
    out = start_pod(roots, "p")
    assert out == {"changed": True, "pod": {"id": record["id"]}}
    assert calls[0] == "f" * 64 and sorted(calls[1:]) == members


def test_a_member_that_fails_gives_podmans_message_and_the_others_start(fake_starts) -> None:
    from podkit_common import errors
    from podkit_runtime._pods import start_pod

    roots, calls, failing = fake_starts
    members = [c * 64 for c in "abc"]
    _pod_record(roots, "p", members)
    failing.add("b" * 64)
    with pytest.raises(errors.RuntimeFailure) as caught:
        start_pod(roots, "p")
    assert str(caught.value) == f"starting container {'b' * 64}: runc start failed: boom"
    assert sorted(calls[1:]) == members  # the others were started all the same


def test_an_infra_that_fails_fails_every_member_as_podman_says(fake_starts) -> None:
    from podkit_common import errors
    from podkit_runtime._pods import start_pod

    roots, calls, failing = fake_starts
    _pod_record(roots, "p", ["a" * 64])
    failing.add("f" * 64)
    with pytest.raises(errors.RuntimeFailure) as caught:
        start_pod(roots, "p")
    assert calls == ["f" * 64]
    assert str(caught.value) == (
        f"starting container {'f' * 64}: runc start failed: boom; starting container "
        f"{'a' * 64}: a dependency of container {'a' * 64} failed to start: container "
        "state improper")


def test_pod_verbs_look_every_pod_up_first_and_go_on_past_a_failure(
        fake_starts, capsys: pytest.CaptureFixture[str]) -> None:
    from podkit_common import errors
    from podkit_common.cli_base import Globals
    from podkit_pod._pod_commands import start_body

    roots, calls, failing = fake_starts
    one, two = _pod_record(roots, "one", []), _pod_record(roots, "two", [])
    obj = Globals("pod", str(roots.root), str(roots.runroot))
    with pytest.raises(errors.NotFound):
        start_body(obj, {"pods": ["one", "nosuch"]})
    assert calls == [] and capsys.readouterr().out == ""
    failing.add("f" * 64)  # both infras have this id: both fail
    with pytest.raises(errors.RuntimeFailure):
        start_body(obj, {"pods": ["one", "two"]})
    assert capsys.readouterr().out == ""
    failing.clear()
    start_body(obj, {"pods": ["two", one["id"][:10]]})
    assert capsys.readouterr().out == f"{two['id']}\n{one['id']}\n"
