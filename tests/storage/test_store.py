"""pod-storage as a user meets it: import from an image document, create, rm; bad
layers leave nothing behind."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from podkit_common import errors, jsonio
from podkit_common.schemas import SchemaSet

SCHEMAS = SchemaSet(["podkit_storage"])


def _tar(*entries: tuple[str, bytes | None, str | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tf.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image_doc(tmp_path: Path, *tars: bytes, diff_ids: list[str] | None = None) -> dict:
    """An image document like pod-image-pull prints, over blobs written here."""
    layers = []
    for i, tar in enumerate(tars):
        blob = gzip.compress(tar, mtime=0)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        path = tmp_path / "blobs" / digest.split(":")[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        diff = diff_ids[i] if diff_ids else "sha256:" + hashlib.sha256(tar).hexdigest()
        layers.append({"digest": digest, "size": len(blob), "diff_id": diff, "path": str(path),
                       "media_type": "application/vnd.oci.image.layer.v1.tar+gzip"})
    config = {"config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers",
                                                   "diff_ids": [la["diff_id"] for la in layers]}}
    image_id = hashlib.sha256(jsonio.dumps(config)).hexdigest()
    return {"changed": True, "image": {"id": image_id, "name": "localhost/test:1",
                                       "config": config, "layers": layers}}


def storage(env: dict, *args: str, doc: dict | None = None) -> subprocess.CompletedProcess:
    data = jsonio.dumps(doc) if doc is not None else None
    return subprocess.run(["pod-storage", *args], input=data, capture_output=True, env=env)


def error_of(proc: subprocess.CompletedProcess) -> dict:
    return jsonio.loads(proc.stderr.splitlines()[-1])["error"]


def layer_dirs(env: dict) -> list[str]:
    layers = Path(env["PODKIT_ROOT"]) / "layers"
    return sorted(p.name for p in layers.iterdir()) if layers.exists() else []


@pytest.mark.root
def test_import_shares_layers_and_is_idempotent(tmp_path, podkit_env):
    base = _tar(("etc", None, None), ("etc/hostname", b"x\n", None))
    top = _tar(("data", None, None), ("data/a", b"a\n", None))
    first = storage(podkit_env, "import", doc=image_doc(tmp_path, base, top))
    assert first.returncode == 0, first.stderr
    out = jsonio.loads(first.stdout)
    SCHEMAS.validate(out, "urn:podkit:storage:stored-image")
    assert out["changed"] is True and len(layer_dirs(podkit_env)) == 2
    # Documents accumulate: changed stays true if an earlier stage changed something.
    unchanged_pull = {**image_doc(tmp_path, base, top), "changed": False}
    again = storage(podkit_env, "import", doc=unchanged_pull)
    assert jsonio.loads(again.stdout)["changed"] is False
    # Another image on the same base layer reuses it.
    other = storage(podkit_env, "import",
                    doc=image_doc(tmp_path, base, _tar(("srv", None, None))))
    assert other.returncode == 0
    assert len(layer_dirs(podkit_env)) == 3
    listed = subprocess.run(["pod-storage", "images"], capture_output=True, env=podkit_env)
    assert len(listed.stdout.splitlines()) == 2


@pytest.mark.root
def test_hostile_layer_is_refused_and_leaves_nothing(tmp_path, podkit_env):
    sentinel = tmp_path / "outside.txt"
    sentinel.write_text("untouched")
    hostile = _tar(("escape", None, str(tmp_path)), ("escape/outside.txt", b"pwned", None),
                   ("../../outside.txt", b"pwned", None))
    proc = storage(podkit_env, "import", doc=image_doc(tmp_path, hostile))
    if proc.returncode == 0:
        # Clamped instead of refused: the writes landed inside the layer, never outside.
        assert sentinel.read_text() == "untouched"
    else:
        assert proc.returncode == errors.UnsafeContent.exit_code, proc.stderr
        assert error_of(proc)["type"] == "UnsafeContent"
        assert layer_dirs(podkit_env) == []
    assert sentinel.read_text() == "untouched"


@pytest.mark.root
def test_wrong_diff_id_is_a_verification_failure_with_nothing_stored(tmp_path, podkit_env):
    layer = _tar(("a", b"a", None))
    doc = image_doc(tmp_path, layer, diff_ids=["sha256:" + "0" * 64])
    proc = storage(podkit_env, "import", doc=doc)
    assert proc.returncode == errors.VerificationFailed.exit_code, proc.stderr
    assert layer_dirs(podkit_env) == []
    assert not (Path(podkit_env["PODKIT_ROOT"]) / "images").exists() or \
        not any((Path(podkit_env["PODKIT_ROOT"]) / "images").iterdir())


@pytest.mark.root
def test_a_missing_blob_is_not_found(tmp_path, podkit_env):
    doc = image_doc(tmp_path, _tar(("a", b"a", None)))
    os.unlink(doc["image"]["layers"][0]["path"])
    proc = storage(podkit_env, "import", doc=doc)
    assert proc.returncode == errors.NotFound.exit_code
    assert layer_dirs(podkit_env) == []


@pytest.mark.root
def test_a_killed_import_is_cleaned_by_the_next(tmp_path, podkit_env):
    layers = Path(podkit_env["PODKIT_ROOT"]) / "layers"
    dead = layers / ".tmp-deadbeef.999999999"
    (dead / "diff").mkdir(parents=True)
    proc = storage(podkit_env, "import", doc=image_doc(tmp_path, _tar(("a", b"a", None))))
    assert proc.returncode == 0, proc.stderr
    assert not dead.exists()


@pytest.mark.root
@pytest.mark.overlay
def test_create_mount_write_rm(tmp_path, podkit_env):
    doc = image_doc(tmp_path, _tar(("etc", None, None), ("etc/motd", b"base\n", None)))
    imported = storage(podkit_env, "import", doc=doc)
    created = storage(podkit_env, "create", "--name", "c1", doc=jsonio.loads(imported.stdout))
    assert created.returncode == 0, created.stderr
    ctr = jsonio.loads(created.stdout)
    SCHEMAS.validate(ctr, "urn:podkit:storage:container")
    rootfs = Path(ctr["container"]["rootfs"])
    assert (rootfs / "etc/motd").read_text() == "base\n"
    (rootfs / "etc/motd").write_text("changed\n")
    # The write lands in the container's upper layer, never in the shared image layer.
    assert (Path(ctr["container"]["upper"]) / "etc/motd").read_text() == "changed\n"
    lower = Path(ctr["container"]["lower"][0])
    assert (lower / "etc/motd").read_text() == "base\n"
    by_image = storage(podkit_env, "create", "--image", "localhost/test:1", "--name", "c2")
    assert by_image.returncode == 0, by_image.stderr
    for name in ("c1", "c2"):
        removed = storage(podkit_env, "rm", name)
        assert removed.returncode == 0, removed.stderr
    assert not rootfs.exists()
    assert storage(podkit_env, "containers").stdout == b""
    gone = storage(podkit_env, "rm", "c1")
    assert gone.returncode == errors.NotFound.exit_code
