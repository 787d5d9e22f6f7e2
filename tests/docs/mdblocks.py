"""Fenced blocks of the Markdown files under docs/, and the tutorial's conventions.

A block's info string is what follows the opening fence (```json urn:podkit:storage:container).
A ``<!-- test: ... -->`` comment on the line just before a fence gives the tutorial test
its instructions, `;`-separated: ``skip (why)``, ``needs pod kube`` (skipped, with the
reason, while that command does not exist), ``retry (why)`` (run again until it
succeeds and prints what is shown: a server still starting).

In a ``console`` block, ``$ `` starts a command (a line ending in a backslash goes on
to the next line); the lines up to the next command are its expected stdout, where
``...`` stands for any text within a line, or, alone on a line, for any lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^(`{3,})(.*)$")
MARK = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    """One fenced block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    marks: list[str] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(DOCS.parent)}:{self.line}"


@dataclass
class Command:
    """One ``$ `` command of a console block and the stdout it shows."""

    line: str
    expected: list[str]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, in order."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        mark = MARK.match(lines[start - 1]) if start else None
        marks = [m.strip() for m in mark.group(1).split(";")] if mark else []
        found.append(Block(path, start + 1, info, "\n".join(body) + "\n", marks))
        i += 1
    return found


def commands(block: Block) -> list[Command]:
    """The commands of a console block with their expected output."""
    found: list[Command] = []
    continuing = False
    for line in block.text.splitlines():
        if continuing:
            found[-1].line += "\n" + line
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            found.append(Command(line[2:], []))
            continuing = line.endswith("\\")
        elif found:
            found[-1].expected.append(line)
        elif line.strip():
            raise ValueError(f"{block.where}: output before any `$ ` command: {line!r}")
    return found


def _norm(line: str) -> str:
    return " ".join(line.split())


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    """A regex for the whole stdout (lines whitespace-normalised by :func:`normalise`)."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*?".join(re.escape(p) for p in _norm(line).split("...")) + r"\n")
    return re.compile("".join(parts))


def normalise(text: str) -> str:
    """stdout with runs of blanks made one space (table widths vary) and blank ends trimmed."""
    lines = [_norm(x) for x in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(x + "\n" for x in lines)


def matches(expected: list[str], actual: str) -> bool:
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    return output_pattern(expected).fullmatch(normalise(actual)) is not None
