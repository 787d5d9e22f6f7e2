"""Every stage's stdin, fuzzed: random JSON, schema-shaped documents with fields
removed, retyped or replaced, random bytes, deep nesting, huge numbers, non-UTF-8.

The outcome is always success with JSON on stdout, or the JSON error envelope on
stderr with an exit code from the README's table: never a traceback, never
"InternalError" (exit 1). Most examples run in-process through the same run_app path
as the executables (tests/fuzz/inproc.py); a few go through the installed executables.
Every path a document names lies deep under tmp_path, so a fuzzed ``../`` cannot reach
past it, and a walk proves nothing was written outside tmp_path's own dirs.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.inproc import Outcome, assert_clean_outcome, run_inproc
from tests.fuzz.strategies import FUZZ, HEX64, NASTY_INPUTS, dumps, examples, json_values, mutated

pytestmark = [pytest.mark.root]

DIGEST = "sha256:" + HEX64
DEPTH = 16  # deeper than any "../" chain a 40-character fuzzed string can spell


def _bed(base: Path) -> dict[str, Path]:
    deep = base.joinpath(*[f"d{i}" for i in range(DEPTH)])
    paths = {"deep": deep, "rootfs": deep / "rootfs", "bundle": deep / "bundle",
             "blob": deep / "blob.tar.gz"}
    paths["rootfs"].mkdir(parents=True, exist_ok=True)
    paths["bundle"].mkdir(exist_ok=True)
    paths["blob"].write_bytes(gzip.compress(b"not a tar" * 100))
    return paths


def _templates(p: dict[str, Path]) -> dict[str, tuple[str, list[str], dict]]:
    container = {"container": {"id": HEX64}}
    image_config = {"Cmd": ["sh", "-c", "true"], "Entrypoint": ["/bin/sh"], "Env": ["A=1"],
                    "User": "0:0", "WorkingDir": "/work", "Labels": {"a": "b"},
                    "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGTERM",
                    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}}
    return {
        "storage-import": ("pod-storage", ["import"], {"changed": True, "image": {
            "id": HEX64, "name": "localhost/fuzz:1", "config": {"config": image_config},
            "layers": [{"digest": DIGEST, "diff_id": DIGEST, "path": str(p["blob"]),
                        "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "size": p["blob"].stat().st_size}]}}),
        "storage-create": ("pod-storage", ["create"], {"image": {"id": HEX64}}),
        "storage-rm": ("pod-storage", ["rm"], container),
        "storage-mount": ("pod-storage", ["mount"], container),
        "storage-umount": ("pod-storage", ["umount"], container),
        "storage-changes": ("pod-storage", ["changes"], container),
        "runtime-bundle": ("pod-runtime", ["bundle"], {
            "container": {"id": HEX64, "name": "fuzz", "rootfs": str(p["rootfs"])},
            "image": {"config": {"config": image_config}}}),
        "runtime-create": ("pod-runtime", ["create"], {
            "container": {"id": HEX64}, "bundle": {"path": str(p["bundle"])}}),
        "runtime-run": ("pod-runtime", ["run", "--detach"], {
            "container": {"id": HEX64}, "bundle": {"path": str(p["bundle"])}}),
        "runtime-start": ("pod-runtime", ["start"], container),
        "netsetup-attach": ("pod-netsetup", ["attach"], container),
        "netsetup-detach": ("pod-netsetup", ["detach"], {
            **container, "network": {"mode": "none"}}),
        "netsetup-status": ("pod-netsetup", ["status"], container),
        "netsetup-check": ("pod-netsetup", ["check"], container),
    }


def _safe_values(p: dict[str, Path]) -> list:
    return [str(p["rootfs"]), str(p["bundle"]), str(p["deep"] / "missing"), str(p["blob"]),
            HEX64, DIGEST, "sha512:" + "0" * 128, "a" * 64, "A" * 64]


def _files_outside(tmp_path: Path, inside: tuple[Path, ...]) -> set[str]:
    out = set()
    for p in tmp_path.rglob("*"):
        if not any(p == d or d in p.parents for d in inside):
            out.add(str(p))
    return out


def _run(podkit_env: dict, tool: str, argv: list[str], data: bytes):
    roots = ["--root", podkit_env["PODKIT_ROOT"], "--runroot", podkit_env["PODKIT_RUNROOT"],
             "--quiet"]
    return run_inproc(tool, [*roots, *argv], data)


COMMANDS = ["storage-import", "storage-create", "storage-rm", "storage-mount", "storage-umount",
            "storage-changes", "runtime-bundle", "runtime-create", "runtime-run",
            "runtime-start", "netsetup-attach", "netsetup-detach", "netsetup-status",
            "netsetup-check"]


@pytest.mark.parametrize("command", COMMANDS)
def test_schema_shaped_documents_with_broken_fields(command, tmp_path, podkit_env):
    bed = _bed(tmp_path / "bed")
    tool, argv, template = _templates(bed)[command]
    allowed_dirs = (tmp_path / "bed", Path(podkit_env["PODKIT_ROOT"]),
                    Path(podkit_env["PODKIT_RUNROOT"]))
    before = _files_outside(tmp_path, allowed_dirs)
    assert_clean_outcome(_run(podkit_env, tool, argv, dumps(template)))

    @settings(FUZZ, max_examples=examples(15))
    @given(doc=mutated(template, _safe_values(bed)))
    def check(doc):
        assert_clean_outcome(_run(podkit_env, tool, argv, dumps(doc)))

    check()
    assert _files_outside(tmp_path, allowed_dirs) == before


STDIN_COMMANDS = [("pod-storage", ["import"]), ("pod-storage", ["create"]),
                  ("pod-storage", ["rm"]), ("pod-runtime", ["bundle"]),
                  ("pod-runtime", ["run"]), ("pod-runtime", ["create"]),
                  ("pod-runtime", ["start"]), ("pod-netsetup", ["attach"]),
                  ("pod-netsetup", ["detach"]), ("pod-netsetup", ["status"])]


def test_random_json_and_bytes_on_every_stdin(tmp_path, podkit_env):
    @settings(FUZZ, max_examples=examples(50))
    @given(command=st.sampled_from(STDIN_COMMANDS),
           data=st.one_of(json_values.map(dumps),
                          st.dictionaries(st.sampled_from(["image", "container", "bundle",
                                                           "network", "changed"]),
                                          json_values, max_size=4).map(dumps),
                          st.binary(max_size=200), st.sampled_from(NASTY_INPUTS)))
    def check(command, data):
        tool, argv = command
        assert_clean_outcome(_run(podkit_env, tool, argv, data))

    check()


@pytest.mark.parametrize("data", NASTY_INPUTS, ids=range(len(NASTY_INPUTS)))
def test_nasty_bytes_on_every_stdin(data, podkit_env):
    for tool, argv in STDIN_COMMANDS:
        assert_clean_outcome(_run(podkit_env, tool, argv, data))


@pytest.mark.parametrize(("tool", "argv", "data"), [
    ("pod-storage", ["import"], b"\xff\xfe" + b"{" * 5000),
    ("pod-runtime", ["start"], b"{}"),
    ("pod-runtime", ["bundle"], b'{"container": {"id": "' + HEX64.encode() +
     b'", "rootfs": "relative"}}'),
    ("pod-netsetup", ["attach"], b'{"container": {"id": 1e999}}'),
    ("pod-storage", ["rm"], b'{"container": {"id": [1]}}'),
    ("pod", ["load"], b"\x1f\x8b\x08garbage"),
])
def test_the_installed_executables_answer_with_the_envelope(tool, argv, data, podkit_env):
    proc = subprocess.run([tool, *argv], input=data, capture_output=True, env=podkit_env,
                          timeout=60)
    allowed = None if tool != "pod" else {125}
    assert proc.returncode != 0
    assert_clean_outcome(Outcome(proc.returncode, proc.stdout, proc.stderr), allowed=allowed)


def _bundle_doc(rootfs: Path, **config) -> bytes:
    return dumps({"container": {"id": HEX64, "rootfs": str(rootfs)},
                  "image": {"config": {"config": config}}})


@pytest.mark.parametrize(("tool", "argv", "data"), [
    ("pod-runtime", ["start"], b"{}"),
    ("pod-runtime", ["start"], b'{"container": {"id": 7}}'),
    ("pod-storage", ["rm"], b'{"container": {"id": []}}'),
    ("pod-storage", ["changes"], b'{"container": {"id": {}}}'),
    ("pod-netsetup", ["detach"], dumps({"container": {"id": HEX64}, "network": -1})),
    ("pod-runtime", ["bundle"], {"Env": [[]]}),
    ("pod-runtime", ["bundle"], {"User": 5}),
    ("pod-runtime", ["bundle"], {"Healthcheck": {"Test": "true"}}),
], ids=["start-empty", "start-int-id", "rm-list-id", "changes-dict-id", "detach-int-network",
        "bundle-env", "bundle-user", "bundle-health"])
def test_found_by_the_fuzzer_now_invalid_documents(tool, argv, data, tmp_path, podkit_env):
    """Each once ended in InternalError (a KeyError, TypeError or AttributeError)."""
    if isinstance(data, dict):  # an image config for a bundle
        rootfs = tmp_path / "rootfs"
        rootfs.mkdir()
        data = _bundle_doc(rootfs, **data)
    out = _run(podkit_env, tool, argv, data)
    assert out.code == 3, out.stderr
    assert out.envelope()["type"] == "InvalidDocument"
