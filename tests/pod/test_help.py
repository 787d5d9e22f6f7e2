"""Every `pod` command's --help shows an example (podman's man pages and --help do), and
typer's shell completion works. Walks the whole command tree, groups included, so a new
command without an example fails here with its name."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from podkit_pod.docgen import pod_root, walk


def help_text(root: Any, path: tuple[str, ...]) -> str:
    from typer.testing import CliRunner

    from podkit_pod.cli import app

    result = CliRunner().invoke(app, [*path, "--help"], prog_name="pod")
    assert result.exit_code == 0, (path, result.output)
    return result.output


#: An example: "Example(s):" then, on that line or the next ones, a command line of pod.
EXAMPLE = re.compile(r"(?:^|\s)Examples?:[ \t]*(?:\n[ \t]*)*(?:[^\n]*\|\s*)?(?:\S+=\S+\s+)*"
                     r"pod\s", re.M)


def test_every_command_has_an_example_in_its_help() -> None:
    root = pod_root()
    missing = []
    checked = 0
    for path, command in walk(root):
        if getattr(command, "commands", None):  # a group: its commands carry the examples
            continue
        checked += 1
        text = help_text(root, path)
        if not EXAMPLE.search(text):
            missing.append("pod " + " ".join(path))
    assert checked > 60
    assert not missing, (f"{len(missing)} of {checked} commands have no example in --help "
                         "(add 'Examples:' and a '\\b' block of `pod ...` lines to the "
                         "docstring):\n  " + "\n  ".join(missing))


def example_commands(text: str) -> list[tuple[str, str | None, str]]:
    """(first word, second word, the example) of each `pod ...` in the help's example
    part (after "Example(s):", before the Arguments/Options sections), lines rejoined
    where the help wrapped them."""
    m = re.search(r"Examples?:(.*?)(?:\n\s*\n(?:Arguments|Options|Commands):|\Z)", text, re.S)
    if not m:
        return []
    body = " ".join(m.group(1).split())
    found = re.finditer(r"(?:^|[\s|;&(])(pod (?:--?[a-z-]+(?:[ =][^\s-]\S*)? )*"
                        r"([a-z][a-z-]*)(?: ([a-z][a-z-]*))?)", body)
    return [(f.group(2), f.group(3), f.group(1)) for f in found]


def test_the_examples_use_commands_that_exist() -> None:
    """An example must name a real command path (catches typos and renamed verbs)."""
    root = pod_root()
    groups = {p[0] for p, c in walk(root) if getattr(c, "commands", None) and len(p) == 1}
    paths = {" ".join(p) for p, _ in walk(root)}
    wrong = []
    for path, command in walk(root):
        if getattr(command, "commands", None):
            continue
        for first, second, example in example_commands(help_text(root, path)):
            named = f"{first} {second}" if first in groups else first
            if named not in paths:
                wrong.append(f"pod {' '.join(path)}: {example}")
    assert not wrong, "examples naming no command:\n  " + "\n  ".join(wrong)


def test_shell_completion_script_and_answers(podkit_env) -> None:
    """`pod --show-completion bash` prints typer's script, and the completion protocol
    answers with pod's commands (what the script asks at every TAB)."""
    script = subprocess.run(["pod", "--show-completion", "bash"], env=podkit_env,
                            capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr
    assert "complete" in script.stdout and "_POD_COMPLETE" in script.stdout
    env = {**podkit_env, "_POD_COMPLETE": "complete_bash", "COMP_WORDS": "pod contai",
           "COMP_CWORD": "1"}
    answer = subprocess.run(["pod"], env=env, capture_output=True, text=True, timeout=60)
    assert "container" in answer.stdout.split(), (answer.stdout, answer.stderr)
    env = {**env, "COMP_WORDS": "pod system ", "COMP_CWORD": "2"}
    answer = subprocess.run(["pod"], env=env, capture_output=True, text=True, timeout=60)
    assert {"df", "prune", "reset", "check"} <= set(answer.stdout.split()), answer.stdout


@pytest.mark.parametrize("argv", [["--help"], ["container", "--help"], ["system", "--help"]])
def test_group_help_lists_the_commands(argv: list[str], podkit_env) -> None:
    out = subprocess.run(["pod", *argv], capture_output=True, text=True, timeout=60,
                         env=podkit_env)
    assert out.returncode == 0 and "Commands:" in out.stdout
