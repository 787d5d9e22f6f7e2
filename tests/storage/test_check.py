"""pod-storage check / check --repair / reset, as a user meets them: leftovers of
crashes are found and repaired, damaged content is reported and never "repaired" away,
reset deletes only podkit's own files and never follows a symlink out of the root."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet
from podkit_storage._content import content_summary
from tests.storage.test_store import _tar, error_of, image_doc, storage

SCHEMAS = SchemaSet(["podkit_storage"])


def check(env: dict, *args: str) -> tuple[int, dict]:
    proc = storage(env, "check", *args)
    report = jsonio.loads(proc.stdout)
    SCHEMAS.validate(report, "urn:podkit:storage:check")
    return proc.returncode, report


def kinds(report: dict) -> set[str]:
    return {p["kind"] for p in report["problems"] if not p["repaired"]}


def imported(tmp_path: Path, env: dict, *tars: bytes) -> dict:
    proc = storage(env, "import", doc=image_doc(tmp_path, *tars))
    assert proc.returncode == 0, proc.stderr
    return jsonio.loads(proc.stdout)


BASE = _tar(("etc", None, None), ("etc/motd", b"base\n", None), ("bin", None, None),
            ("bin/sh", None, "busybox"))
TOP = _tar(("data", None, None), ("data/a", b"a\n", None))


def test_content_summary_sees_content_mode_and_links(tmp_path):
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_bytes(b"x")
    os.symlink("f", tree / "d" / "l")
    first = content_summary(tree)
    assert first == content_summary(tree) and first["entries"] == 4 and first["bytes"] == 1
    (tree / "d" / "f").write_bytes(b"y")
    second = content_summary(tree)
    assert second["digest"] != first["digest"]
    os.chmod(tree / "d" / "f", 0o600)
    assert content_summary(tree)["digest"] != second["digest"]
    third = content_summary(tree)
    os.unlink(tree / "d" / "l")
    os.symlink("g", tree / "d" / "l")
    assert content_summary(tree)["digest"] != third["digest"]


@pytest.mark.root
@pytest.mark.overlay
def test_a_healthy_store_is_clean(tmp_path, podkit_env):
    doc = imported(tmp_path, podkit_env, BASE, TOP)
    layer_json = Path(doc["image"]["layers"][0]["diff_path"]).parent / "layer.json"
    # import records the blob `check` re-unpacks; it does no extra work itself
    assert Path(json.loads(layer_json.read_text())["blob"]).is_file()
    assert storage(podkit_env, "create", "--name", "web", doc=doc).returncode == 0
    code, report = check(podkit_env)
    assert (code, report) == (0, {"changed": False, "clean": True, "problems": []})


@pytest.mark.root
@pytest.mark.overlay
def test_crash_leftovers_are_found_and_repaired_without_touching_good_data(tmp_path,
                                                                             podkit_env):
    root = Path(podkit_env["PODKIT_ROOT"])
    good = imported(tmp_path, podkit_env, BASE)
    assert storage(podkit_env, "create", "--name", "keep", doc=good).returncode == 0
    # What kill -9 leaves at each step of import and create:
    # An image record whose only layer is gone.
    lost = imported(tmp_path, podkit_env, TOP)
    import shutil
    shutil.rmtree(Path(lost["image"]["layers"][0]["diff_path"]).parent)
    # What kill -9 leaves at each step of import and create (after the last import: an
    # import sweeps the staging files of dead writers itself)
    (root / "layers" / ".tmp-feed.999999999" / "diff").mkdir(parents=True)
    (root / "layers" / ("ab" * 32) / "diff").mkdir(parents=True)
    (root / "images" / ".tmp-x.json.999999999.abcd").write_text("{")
    half = root / "containers" / ("cd" * 32)
    (half / "upper").mkdir(parents=True)
    (root / "containers" / "names" / "ghost").write_text("ef" * 32)

    code, report = check(podkit_env)
    assert code == errors.Conflict.exit_code
    assert not report["clean"]
    assert kinds(report) == {"staging", "incomplete-layer", "incomplete-container",
                             "orphan-name", "image-missing-layer"}
    assert all(p["repairable"] for p in report["problems"])

    code, report = check(podkit_env, "--repair")
    assert code == 0 and report["clean"] and report["changed"], report
    code, report = check(podkit_env)
    assert (code, report["problems"]) == (0, [])
    # The good image and its container are untouched.
    listed = [jsonio.loads(line) for line in storage(podkit_env, "containers").stdout.splitlines()]
    assert [c["name"] for c in listed] == ["keep"] and listed[0]["mounted"]
    assert (Path(listed[0]["rootfs"]) / "etc" / "motd").read_bytes() == b"base\n"
    assert storage(podkit_env, "create", "--name", "ghost", doc=good).returncode == 0


@pytest.mark.root
def test_a_damaged_layer_is_reported_and_never_repaired_away(tmp_path, podkit_env):
    doc = imported(tmp_path, podkit_env, BASE)
    diff = Path(doc["image"]["layers"][0]["diff_path"])
    (diff / "etc" / "motd").write_bytes(b"tampered\n")
    code, report = check(podkit_env)
    assert code == errors.VerificationFailed.exit_code
    [problem] = report["problems"]
    assert problem["kind"] == "damaged-layer" and problem["repairable"]
    assert not problem["repaired"] and not report["clean"]
    assert (diff / "etc" / "motd").read_bytes() == b"tampered\n"
    # --repair unpacks the layer again from its stored blob (checked against its diff_id)
    code, report = check(podkit_env, "--repair")
    assert code == 0 and report["problems"][0]["repaired"], report
    assert (diff / "etc" / "motd").read_bytes() == b"base\n"
    assert check(podkit_env)[0] == 0


@pytest.mark.root
def test_damaged_blobs_are_reported(tmp_path, podkit_env):
    doc = image_doc(tmp_path, BASE)
    manifest = tmp_path / "blobs" / "manifest"
    manifest.write_bytes(b"{}")
    doc["image"].update(manifest_path=str(manifest), digest="sha256:" + "0" * 64)
    assert storage(podkit_env, "import", doc=doc).returncode == 0
    code, report = check(podkit_env)
    assert code == errors.VerificationFailed.exit_code
    assert kinds(report) == {"damaged-blob"}


@pytest.mark.root
def test_orphan_layers_go_only_with_prune_orphans(tmp_path, podkit_env):
    doc = imported(tmp_path, podkit_env, BASE, TOP)
    os.unlink(Path(podkit_env["PODKIT_ROOT"]) / "images" / f"{doc['image']['id']}.json")
    code, report = check(podkit_env, "--repair")
    assert code == errors.Conflict.exit_code and kinds(report) == {"orphan-layer"}
    assert all(Path(la["diff_path"]).is_dir() for la in doc["image"]["layers"])
    code, report = check(podkit_env, "--repair", "--prune-orphans")
    assert code == 0 and report["clean"]
    assert not any(Path(la["diff_path"]).exists() for la in doc["image"]["layers"])
    proc = storage(podkit_env, "check", "--prune-orphans")
    assert proc.returncode == 2 and error_of(proc)["type"] == "UsageError"


@pytest.mark.root
@pytest.mark.overlay
def test_reset_asks_for_force_then_deletes_only_podkits_files(tmp_path, podkit_env):
    root, runroot = Path(podkit_env["PODKIT_ROOT"]), Path(podkit_env["PODKIT_RUNROOT"])
    doc = imported(tmp_path, podkit_env, BASE)
    created = storage(podkit_env, "create", "--name", "web", doc=doc)
    rootfs = Path(jsonio.loads(created.stdout)["container"]["rootfs"])
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("untouched")
    (root / "blobs").mkdir(exist_ok=True)
    os.symlink(outside / "keep", root / "blobs" / "link")  # inside a podkit dir
    os.symlink(outside, runroot / "bundles")                # a podkit name, as a symlink
    (root / "mine.txt").write_text("not podkit's")

    proc = storage(podkit_env, "reset")
    assert proc.returncode == 2 and "--force" in error_of(proc)["hint"]
    assert (root / "layers").is_dir()

    proc = storage(podkit_env, "reset", "--force")
    assert proc.returncode == 0, proc.stderr
    out = jsonio.loads(proc.stdout)
    SCHEMAS.validate(out, "urn:podkit:storage:reset")
    assert str(rootfs) in out["unmounted"] and out["changed"]
    assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]
    assert not os.path.lexists(runroot / "bundles")
    assert (outside / "keep" / "file").read_text() == "untouched"
    rootfs_mounted = subprocess.run(["findmnt", str(rootfs)], capture_output=True)
    assert rootfs_mounted.returncode != 0
    code, report = check(podkit_env)
    assert code == 0 and report["clean"]
