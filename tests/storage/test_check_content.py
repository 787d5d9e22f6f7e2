"""`pod-storage check` on a layer whose blob is gone: it is verified against the summary
an earlier check recorded while the blob was there, or against another image's blob of
the same layer; with neither, the report says plainly that it could not be verified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from podkit_common import jsonio
from podkit_common.schemas import SchemaSet
from tests.storage.test_store import _tar, image_doc, storage

pytestmark = [pytest.mark.root]

SCHEMAS = SchemaSet(["podkit_storage"])
LAYER = _tar(("etc", None, None), ("etc/motd", b"hello\n", None), ("bin", None, None),
             ("bin/sh", None, "busybox"))


def check(env: dict) -> tuple[int, dict]:
    proc = storage(env, "check")
    report = jsonio.loads(proc.stdout)
    SCHEMAS.validate(report, "urn:podkit:storage:check")
    return proc.returncode, report


def imported(env: dict, doc: dict) -> dict:
    proc = storage(env, "import", doc=doc)
    assert proc.returncode == 0, proc.stderr
    return jsonio.loads(proc.stdout)["image"]


def test_a_layer_checked_once_stays_verifiable_after_its_blob_is_gone(tmp_path, podkit_env):
    image = imported(podkit_env, image_doc(tmp_path, LAYER))
    layer = image["layers"][0]
    diff = Path(layer["diff_path"])
    assert check(podkit_env) == (0, {"changed": False, "clean": True, "problems": []})
    assert (diff.parent / "verified.json").is_file()
    Path(layer["path"]).unlink()
    # Intact: verified against the recorded summary, nothing "unverified".
    assert check(podkit_env) == (0, {"changed": False, "clean": True, "problems": []})
    (diff / "etc" / "motd").write_bytes(b"tampered\n")
    code, report = check(podkit_env)
    assert code == 6 and [p["kind"] for p in report["problems"]] == ["damaged-layer"]
    assert "when check last verified it against its blob" in report["problems"][0]["detail"]


def test_a_layer_never_checked_while_its_blob_existed_is_reported_unverified(tmp_path,
                                                                           podkit_env):
    image = imported(podkit_env, image_doc(tmp_path, LAYER))
    layer = image["layers"][0]
    Path(layer["path"]).unlink()
    code, report = check(podkit_env)
    assert code == 0 and report["clean"] and report["problems"] == []
    chain = layer["chain_id"].split(":")[1]
    assert [u["object"] for u in report["unverified"]] == [f"layers/{chain}"]
    assert "blob is gone" in report["unverified"][0]["reason"]


def test_another_images_blob_of_the_same_layer_is_used(tmp_path, podkit_env):
    """Two images share a layer through different blobs (gzip and plain tar); the first
    blob goes: the second one still verifies the layer, and catches a change."""
    first = imported(podkit_env, image_doc(tmp_path, LAYER))
    plain = tmp_path / "plain.tar"
    plain.write_bytes(LAYER)
    diff_id = "sha256:" + hashlib.sha256(LAYER).hexdigest()
    config = {"config": {"Cmd": ["sh"], "Env": ["OTHER=1"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    second = imported(podkit_env, {"changed": True, "image": {
        "id": hashlib.sha256(jsonio.dumps(config)).hexdigest(), "name": "localhost/other:1",
        "config": config, "layers": [{
            "digest": diff_id, "size": len(LAYER), "diff_id": diff_id, "path": str(plain),
            "media_type": "application/vnd.oci.image.layer.v1.tar"}]}})
    assert second["layers"][0]["chain_id"] == first["layers"][0]["chain_id"]
    Path(first["layers"][0]["path"]).unlink()
    diff = Path(first["layers"][0]["diff_path"])
    (diff.parent / "verified.json").unlink(missing_ok=True)
    assert check(podkit_env) == (0, {"changed": False, "clean": True, "problems": []})
    (diff / "etc" / "motd").write_bytes(b"tampered\n")
    code, report = check(podkit_env)
    assert code == 6 and [p["kind"] for p in report["problems"]] == ["damaged-layer"]
    assert "in its blob" in report["problems"][0]["detail"]
