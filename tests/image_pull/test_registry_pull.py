"""Pulls from a real docker-registry on 127.0.0.1, through the library call."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from podkit_common.progress import Progress
from podkit_common.schemas import SchemaSet
from podkit_image_pull import pull
from tests.testbed.images import BuiltImage, BuiltIndex, platform_string
from tests.testbed.registry import free_port

pytestmark = pytest.mark.registry

SCHEMA = "urn:podkit:image-pull:image"
PULLABLE = ["busybox:latest", "busybox:oci", "busybox:multiarch", "busybox:multiarch-docker",
            "busybox:zstd"]


def expected_image(built: BuiltImage | BuiltIndex) -> BuiltImage:
    return built.native if isinstance(built, BuiltIndex) else built


def assert_store_is_verified(root: Path) -> list[str]:
    """Every stored blob's sha256 equals its name; no temporary file is left."""
    names = []
    for path in sorted((root / "blobs" / "sha256").iterdir()):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
        names.append(path.name)
    tmp = root / "blobs" / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    return names


def assert_describes(doc: dict, pushed, built: BuiltImage, root: Path) -> None:
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    image = doc["image"]
    assert image["digest"] == built.manifest_digest
    assert image["media_type"] == built.manifest_media_type
    assert image["config_digest"] == built.config_digest
    assert image["id"] == built.config_digest.removeprefix("sha256:")
    assert image["config"] == built.config_json
    assert image["platform"] == built.platform
    assert image["root"] == str(root)
    assert [(la["digest"], la["size"], la["media_type"], la["diff_id"]) for la in image["layers"]] \
        == [(la.digest, la.size, la.media_type, la.diff_id) for la in built.layers]
    for layer, built_layer in zip(image["layers"], built.layers, strict=True):
        assert Path(layer["path"]).read_bytes() == built_layer.data
    assert Path(image["manifest_path"]).read_bytes() == built.manifest
    assert Path(image["config_path"]).read_bytes() == built.config
    stored = assert_store_is_verified(root)
    assert built.manifest_digest[7:] in stored
    if isinstance(pushed.image, BuiltIndex):
        assert image["index_digest"] == pushed.digest
        assert pushed.digest[7:] in stored
    else:
        assert image["index_digest"] is None


@pytest.mark.parametrize("name", PULLABLE)
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_pull(images, tmp_path, name, by):
    pushed = images[name]
    ref = pushed.ref if by == "tag" else pushed.ref_by_digest
    root = tmp_path / "root"
    doc = pull(ref, root=root, tls_verify=False)
    assert doc["changed"] is True
    assert_describes(doc, pushed, expected_image(pushed.image), root)
    image = doc["image"]
    assert image["reference"] == ref
    assert image["registry"] == images.registry_url
    assert image["repository"] == "busybox"
    if by == "tag":
        assert image["tag"] == name.split(":")[1]
        assert image["name"] == f"{images.registry_url}/{name}"
    else:
        assert image["tag"] is None
        assert image["name"] == f"{images.registry_url}/busybox@{pushed.digest}"


@pytest.mark.parametrize("name", ["busybox:multiarch", "busybox:multiarch-docker"])
def test_platform_picks_another_child(images, tmp_path, name):
    pushed = images[name]
    other = pushed.image.children[1]
    doc = pull(pushed.ref, root=tmp_path, tls_verify=False,
               platform=platform_string(other.platform))
    assert doc["image"]["digest"] == other.manifest_digest != pushed.image.native.manifest_digest
    assert_describes(doc, pushed, other, tmp_path)


def test_platform_linux_arm64_v8(images, tmp_path):
    pushed = images["busybox:multiarch"]
    doc = pull(pushed.ref, root=tmp_path, tls_verify=False, platform="linux/arm64/v8")
    arm64 = pushed.image.child_for("arm64", "v8")
    assert doc["image"]["digest"] == arm64.manifest_digest
    assert doc["image"]["platform"] == {"os": "linux", "architecture": "arm64", "variant": "v8"}


def test_second_pull_changes_nothing(images, tmp_path):
    first = pull(images.ref("busybox:multiarch"), root=tmp_path, tls_verify=False)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    second = pull(images.ref("busybox:multiarch"), root=tmp_path, tls_verify=False)
    assert (first["changed"], second["changed"]) == (True, False)
    assert second["image"] == first["image"]
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    assert after == before


def test_images_sharing_layers_share_blobs(images, tmp_path):
    pull(images.ref("busybox:latest"), root=tmp_path, tls_verify=False)
    events = io.StringIO()
    doc = pull(images.ref("busybox:oci"), root=tmp_path, tls_verify=False,
               progress=Progress("pod-image-pull", "json", stream=events))
    assert doc["changed"] is True
    shared = images["busybox:latest"].image.layers[0].digest
    assert shared == doc["image"]["layers"][0]["digest"]
    tasks = [json.loads(line)["progress"]["task"] for line in events.getvalue().splitlines()]
    assert f"blob {shared[:19]} already present, skipped" in tasks
    assert f"blob {shared[:19]}" not in tasks


def test_loopback_registry_is_never_proxied(images, tmp_path, monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{free_port()}")  # a dead proxy
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    doc = pull(images.ref("busybox:latest"), root=tmp_path, tls_verify=False)
    assert doc["changed"] is True
