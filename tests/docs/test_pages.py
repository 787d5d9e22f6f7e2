"""The hand-written pages stay true: relative links resolve, the from-podman table
covers every `pod` command and calls out of scope only what really is missing, and the
tutorial's conventions (tests/docs/mdblocks.py) parse and match as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from podkit_pod import docgen
from tests.docs import mdblocks

LINK = re.compile(r"\]\(([^)\s]+)\)")
FROM_PODMAN = mdblocks.DOCS / "from-podman.md"
#: podman/docker commands from-podman.md says podkit does not have
OUT_OF_SCOPE = ["build", "commit", "push", "login", "logout", "search", "manifest", "secret",
                "machine", "unshare", "compose", "swarm", "service", "stack", "auto-update"]


def pages() -> list[Path]:
    return sorted(p for p in mdblocks.DOCS.rglob("*.md")
                  if "bench" not in p.relative_to(mdblocks.DOCS).parts)


@pytest.fixture(scope="module")
def root():
    return docgen.pod_root()


def test_relative_links_resolve() -> None:
    broken = []
    for page in [*pages(), mdblocks.DOCS.parent / "README.md"]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(mdblocks.DOCS.parent)}: {target}")
    assert not broken, broken


def test_from_podman_names_every_pod_command(root) -> None:
    text = FROM_PODMAN.read_text()
    missing = []
    for path, command in docgen.walk(root):
        if getattr(command, "commands", None) or path[0] in ("container", "image", "schema"):
            continue
        page = "pod-" + "-".join(path) + ".md"
        if f"`pod {' '.join(path)}`" not in text and f"commands/{page}" not in text:
            missing.append("pod " + " ".join(path))
    assert not missing, f"docs/from-podman.md does not mention {missing}"


def test_what_from_podman_calls_out_of_scope_is_not_a_command(root) -> None:
    text = FROM_PODMAN.read_text()
    for name in OUT_OF_SCOPE:
        assert name in text
    built = sorted(set(OUT_OF_SCOPE) & set(root.commands))
    assert not built, f"`pod {built}` exist now: update docs/from-podman.md's 'Not in podkit'"


def test_console_blocks_parse_into_commands_and_outputs() -> None:
    tutorial = [b for b in mdblocks.blocks(mdblocks.DOCS / "tutorial.md")
                if b.lang == "console"]
    assert len(tutorial) > 10
    known = ("skip (", "needs pod ", "retry (")
    for block in tutorial:
        assert mdblocks.commands(block), block.where
        assert all(m.startswith(known) for m in block.marks), (block.where, block.marks)
    runs = [c.line for b in tutorial if not any(m.startswith("skip") for m in b.marks)
            for c in mdblocks.commands(b)]
    for needed in ("pod pull", "pod run", "pod logs", "pod exec", "pod pod create",
                   "pod kube generate", "pod kube play", "pod kube down", "pod events"):
        assert any(line.startswith(needed) for line in runs), needed


def test_output_matching_conventions() -> None:
    assert mdblocks.matches(["hello"], "hello\n")
    assert not mdblocks.matches(["hello"], "hello\nworld\n")
    assert mdblocks.matches(["a", "...", "z"], "a\nb\nc\nz\n")
    assert mdblocks.matches(["a", "...", "z"], "a\nz\n")
    assert mdblocks.matches(["web Exited (3) ... ago"], "web   Exited (3) 2 seconds ago\n")
    assert not mdblocks.matches(["web Exited (3) ... ago"], "web Exited (0) 2 seconds ago\n")
    assert mdblocks.matches([], "")
    assert not mdblocks.matches([], "something\n")
    block = mdblocks.Block(Path("x.md"), 1, "console", "$ echo a \\\n  b\na b\n$ true\n")
    [first, second] = mdblocks.commands(block)
    assert first.line == "echo a \\\n  b" and first.expected == ["a b"]
    assert second.expected == []
