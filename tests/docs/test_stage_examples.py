"""The JSON examples of the stage pages are what the stages print now: the pipeline of
docs/stages/pod-runtime.md is run (pull, import, create, bundle, attach --network none,
run; then ps, images, rm) and every key an example shows must be in the real document
of its schema (examples may leave keys out, never invent or keep stale ones)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from tests.docs import mdblocks
from tests.testbed.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.runc, pytest.mark.overlay, pytest.mark.registry]


def key_paths(doc: Any, prefix: str = "") -> set[str]:
    """Every key path of a document (a list's items share the path ``name[]``)."""
    paths: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            paths.add(prefix + key)
            paths |= key_paths(value, prefix + key + ".")
    elif isinstance(doc, list):
        for item in doc:
            paths |= key_paths(item, prefix.rstrip(".") + "[].")
    return paths


def examples() -> dict[str, list[tuple[str, Any]]]:
    """schema id -> [(where, document)] of the stage pages' JSON examples."""
    found: dict[str, list[tuple[str, Any]]] = {}
    for page in sorted((mdblocks.DOCS / "stages").glob("*.md")):
        for block in mdblocks.blocks(page):
            if block.lang == "json" and len(block.info.split()) == 2:
                found.setdefault(block.info.split()[1], []).append(
                    (block.where, json.loads(block.text)))
    return found


def ok(cmd: str, env: dict[str, str], stdin: str | None = None) -> str:
    proc = sh(cmd, env=env, input=stdin)
    assert proc.returncode == 0, f"{cmd}: {proc.stderr.decode()}"
    return proc.stdout.decode()


def test_stage_examples_show_only_keys_the_stages_print(images, podkit_env) -> None:
    env = podkit_env
    ref = shlex.quote(images.ref("busybox:latest"))
    real: dict[str, list[Any]] = {}
    pulled = ok(f"pod-image-pull --tls-verify=false {ref}", env)
    stored = ok("pod-storage import", env, pulled)
    created = ok("pod-storage create --name hello", env, stored)
    bundled = ok("pod-runtime bundle -- sh -c 'echo hello from $(hostname)'", env, created)
    attached = ok("pod-netsetup attach --network none", env, bundled)
    final = ok("pod-runtime run", env, attached)
    for sid, text in [("urn:podkit:image-pull:image", pulled),
                      ("urn:podkit:storage:stored-image", stored),
                      ("urn:podkit:storage:container", created),
                      ("urn:podkit:runtime:bundle", bundled),
                      ("urn:podkit:runtime:state", final)]:
        real[sid] = [json.loads(text)]
    real["urn:podkit:runtime:ps-line"] = [json.loads(x) for x in
                                          ok("pod-runtime ps --all", env).splitlines()]
    real["urn:podkit:storage:image-line"] = [json.loads(x) for x in
                                             ok("pod-storage images", env).splitlines()]
    real["urn:podkit:runtime:removal"] = [json.loads(ok("pod-runtime rm hello", env))]
    ok("pod-storage rm hello", env)
    assert json.loads(final)["state"]["exit_code"] == 0

    shown = examples()
    checked = 0
    for sid, docs in real.items():
        have = set().union(*(key_paths(d) for d in docs))
        for where, example in shown.get(sid, []):
            invented = sorted(key_paths(example) - have)
            assert not invented, f"{where}: keys {sid} documents no longer have: {invented}"
            checked += 1
    assert checked >= 8, f"only {checked} stage examples matched a real document"
