"""docs/commands/ is generated from pod's command registry (podkit_pod.docgen): the
committed pages must be exactly what the generator writes now, so the docs cannot drift
from --help, and every command must have a page with an example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from podkit_pod import docgen

REPO = Path(__file__).resolve().parents[2]
COMMANDS = REPO / "docs" / "commands"


def test_committed_pages_are_what_the_generator_writes(tmp_path: Path) -> None:
    fresh = tmp_path / "commands"
    docgen.generate(fresh)
    want = {p.name: p.read_text() for p in fresh.glob("*.md")}
    have = {p.name: p.read_text() for p in COMMANDS.glob("*.md")}
    missing, stale = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    differ = sorted(n for n in set(want) & set(have) if want[n] != have[n])
    assert not (missing or stale or differ), (
        f"docs/commands is out of date (run `{docgen.REGENERATE}`): "
        f"missing {missing}, stale {stale}, different {differ}")


def test_every_command_has_a_page_with_help_and_an_example() -> None:
    root = docgen.pod_root()
    docs, globals_ = docgen.collect(root)
    assert len(docs) > 60
    assert {"--root DIR", "--runroot DIR"} <= {o for o, _, _ in globals_}
    index = (COMMANDS / "index.md").read_text()
    leaves = {" ".join(p) for p, c in docgen.walk(root) if not getattr(c, "commands", None)}
    assert {" ".join(d.path) for d in docs} == leaves
    for doc in docs:
        assert (COMMANDS / doc.filename).is_file(), doc.name
        assert f"]({doc.filename})" in index, doc.name
        if doc.same_as is not None:
            continue
        assert doc.summary and doc.description, f"{doc.name} has no help text"
        assert any(e.split()[:1] == ["pod"] or " pod " in f" {e} " for e in doc.examples), (
            f"{doc.name} has no `pod ...` example in its --help")


def test_pages_carry_the_help_of_options_and_their_defaults() -> None:
    page = (COMMANDS / "pod-ps.md").read_text()
    assert "| `-a, --all` |  | show all containers, not only running ones |" in page
    assert "| `--sort <str>` | `created` |" in page
    assert "pod ps -a --format json" in page
    alias = (COMMANDS / "pod-container-ls.md").read_text()
    assert "[`pod ps`](pod-ps.md)" in alias


def test_split_help_separates_the_examples() -> None:
    text = "Do a thing.\n\nMore words\n  wrapped.\n\n\b\nExamples:\n  pod x a\n  pod x b"
    assert docgen.split_help(text) == (["Do a thing.", "More words wrapped."],
                                       ["pod x a", "pod x b"])
    assert docgen.split_help("One line. Example: pod y | jq .") == (["One line."],
                                                                     ["pod y | jq ."])


def test_importing_the_generator_does_not_import_typer() -> None:
    code = "import sys, podkit_pod.docgen; print('typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
