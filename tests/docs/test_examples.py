"""Every JSON example under docs/ names its schema in the fence (```json urn:podkit:…)
and validates against it, and each stage's page names every document type its
executable prints (`<tool> schema`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet
from tests.docs import mdblocks

PACKAGES = {"pod-image-pull": "podkit_image_pull", "pod-storage": "podkit_storage",
            "pod-runtime": "podkit_runtime", "pod-netsetup": "podkit_netsetup"}
SCHEMAS = SchemaSet([*PACKAGES.values(), "podkit_pod"])


def doc_pages() -> list[Path]:
    return sorted(p for p in mdblocks.DOCS.rglob("*.md")
                  if "bench" not in p.relative_to(mdblocks.DOCS).parts)


def json_blocks() -> list[mdblocks.Block]:
    return [b for p in doc_pages() for b in mdblocks.blocks(p) if b.lang == "json"]


def test_there_are_examples_on_every_stage_page() -> None:
    pages = {b.path.stem for b in json_blocks() if b.path.parent.name == "stages"}
    assert set(PACKAGES) <= pages


@pytest.mark.parametrize("block", json_blocks(), ids=lambda b: b.where)
def test_json_example_validates_against_its_schema(block: mdblocks.Block) -> None:
    words = block.info.split()
    assert len(words) == 2 and words[1].startswith("urn:podkit:"), (
        f"{block.where}: name the schema in the fence: ```json urn:podkit:PKG:NAME")
    assert words[1] in SCHEMAS.schemas, f"{block.where}: no schema {words[1]}"
    doc = json.loads(block.text)
    problems = SCHEMAS.errors(doc, words[1])
    assert not problems, f"{block.where}: " + "; ".join(problems)


@pytest.mark.parametrize("tool", sorted(PACKAGES))
def test_stage_page_names_every_document_its_tool_prints(tool: str) -> None:
    page = (mdblocks.DOCS / "stages" / f"{tool}.md").read_text()
    own = SCHEMAS.own(PACKAGES[tool])
    assert own
    missing = sorted(sid for sid in own if f"`{sid}`" not in page and f" {sid}\n" not in page)
    assert not missing, f"docs/stages/{tool}.md does not name {missing}"


def test_a_broken_example_is_caught() -> None:
    """The check can fail: a stored-image document without its image does not pass."""
    assert SCHEMAS.errors({"changed": True}, "urn:podkit:storage:stored-image")
