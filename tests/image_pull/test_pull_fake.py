"""Whole pulls against the in-memory registry: the failure paths a real registry won't take."""

from __future__ import annotations

import hashlib
import io
import json

import httpx
import pytest

from podkit_common.errors import (
    NotFound,
    NotImplementedYet,
    ResourceExhausted,
    UsageError,
    VerificationFailed,
)
from podkit_common.progress import Progress
from podkit_common.schemas import SchemaSet
from podkit_image_pull import pull
from podkit_image_pull._manifest import DOCKER_V2S1_SIGNED
from tests.image_pull.fakes import HOST, FakeRegistry, dump
from tests.testbed.images import busybox_image, multiarch_index, platform_string

SCHEMA = "urn:podkit:image-pull:image"


@pytest.fixture(scope="module")
def two_layers():
    return busybox_image(2, fmt="oci")


@pytest.fixture
def fake(two_layers) -> FakeRegistry:
    reg = FakeRegistry()
    reg.add_image("busybox:oci", two_layers)
    return reg


def blob_files(root):
    folder = root / "blobs" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def run(fake, root, ref="busybox:oci", **kw):
    return pull(f"docker://{HOST}/{ref}", root=root, client=fake.client(), **kw)


def test_pull_stores_every_blob_and_describes_it(fake, two_layers, tmp_path):
    doc = run(fake, tmp_path)
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA)
    image = doc["image"]
    assert doc["changed"] is True
    assert image["digest"] == two_layers.manifest_digest
    assert image["id"] == two_layers.config_digest[7:]
    assert image["config"] == two_layers.config_json
    assert [la["diff_id"] for la in image["layers"]] == [la.diff_id for la in two_layers.layers]
    for name in blob_files(tmp_path):
        assert hashlib.sha256((tmp_path / "blobs/sha256" / name).read_bytes()).hexdigest() == name
    assert len(blob_files(tmp_path)) == 2 + len(two_layers.layers)


def test_registry_that_wants_a_token(fake, tmp_path):
    fake.token = "abc"
    assert run(fake, tmp_path)["changed"] is True
    assert fake.tokens_issued == 1


def test_tampered_layer_is_refused_and_not_stored(fake, two_layers, tmp_path):
    bad = two_layers.layers[1].digest
    fake.tamper.add(bad)
    with pytest.raises(VerificationFailed, match=bad):
        run(fake, tmp_path)
    stored = blob_files(tmp_path)
    assert bad[7:] not in stored
    # The manifest is stored last, so a failed pull leaves no manifest claiming the image.
    assert two_layers.manifest_digest[7:] not in stored
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_tampered_config_stores_nothing(fake, two_layers, tmp_path):
    fake.tamper.add(two_layers.config_digest)
    with pytest.raises(VerificationFailed):
        run(fake, tmp_path)
    assert blob_files(tmp_path) == []


def test_layer_count_must_match_diff_ids(fake, two_layers, tmp_path):
    manifest = json.loads(two_layers.manifest)
    manifest["layers"] = manifest["layers"][:1]
    fake.manifests["busybox:short"] = (dump(manifest), two_layers.manifest_media_type)
    with pytest.raises(VerificationFailed, match="1 layers but the config has 2"):
        run(fake, tmp_path, "busybox:short")
    assert two_layers.layers[0].digest[7:] not in blob_files(tmp_path)


def test_schema1_is_refused(fake, tmp_path):
    fake.manifests["busybox:old"] = (dump({"schemaVersion": 1, "signatures": []}),
                                     DOCKER_V2S1_SIGNED)
    with pytest.raises(NotImplementedYet, match="schema 1"):
        run(fake, tmp_path, "busybox:old")


def test_oci_artifact_is_refused_before_any_blob(fake, two_layers, tmp_path):
    manifest = json.loads(two_layers.manifest)
    manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    fake.manifests["busybox:chart"] = (dump(manifest), two_layers.manifest_media_type)
    with pytest.raises(NotImplementedYet, match="not a container image"):
        run(fake, tmp_path, "busybox:chart")
    assert not any("/blobs/" in r.url.path for r in fake.requests)


@pytest.mark.parametrize("kw", [{"ref": "busybox@sha256:abc"}, {"ref": "BusyBox:oci"},
                                {"platform": "linux"}])
def test_bad_input_fails_before_any_request(fake, tmp_path, kw):
    with pytest.raises(UsageError):
        run(fake, tmp_path, **kw)
    assert fake.requests == []


def test_index_pull_selects_the_platform_child(tmp_path):
    index = multiarch_index("oci")
    fake = FakeRegistry()
    fake.add_image("busybox:multiarch", index)
    foreign = index.children[1]
    want = platform_string(foreign.platform)
    doc = run(fake, tmp_path, "busybox:multiarch", platform=want)
    assert doc["image"]["index_digest"] == index.manifest_digest
    assert doc["image"]["digest"] == foreign.manifest_digest
    assert doc["image"]["platform"] == foreign.platform
    assert index.manifest_digest[7:] in blob_files(tmp_path)


def test_repeated_layers_download_once(tmp_path):
    image = busybox_image(1, fmt="oci")
    manifest = json.loads(image.manifest)
    manifest["layers"] = manifest["layers"] * 2
    config = json.loads(image.config)
    config["rootfs"]["diff_ids"] *= 2
    config_bytes = json.dumps(config).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest["config"].update(digest=config_digest, size=len(config_bytes))
    fake = FakeRegistry()
    fake.manifests["x:twice"] = (dump(manifest), image.manifest_media_type)
    fake.blobs.update(image.blobs)
    fake.blobs[config_digest] = config_bytes
    doc = run(fake, tmp_path, "x:twice")
    assert len(doc["image"]["layers"]) == 2
    layer_gets = [r for r in fake.requests if image.layers[0].digest in r.url.path]
    assert len(layer_gets) == 1


def test_progress_reports_each_downloaded_blob(fake, two_layers, tmp_path):
    stream = io.StringIO()
    run(fake, tmp_path, progress=Progress("pod-image-pull", "json", stream=stream))
    events = [json.loads(line)["progress"] for line in stream.getvalue().splitlines()]
    done = {e["task"] for e in events if e["done"]}
    for layer in two_layers.layers:
        assert f"blob {layer.digest[:19]}" in done
    finals = [e for e in events if e["done"] and e.get("total")]
    assert all(e["current"] == e["total"] for e in finals)


def test_missing_blob_is_not_found_and_stores_no_manifest(fake, two_layers, tmp_path):
    del fake.blobs[two_layers.layers[0].digest]
    with pytest.raises(NotFound):
        run(fake, tmp_path)
    assert two_layers.manifest_digest[7:] not in blob_files(tmp_path)


def test_injected_client_is_not_closed(fake, tmp_path):
    client = fake.client()
    pull(f"docker://{HOST}/busybox:oci", root=tmp_path, client=client)
    assert not client.is_closed
    assert isinstance(client, httpx.Client)


def _failing_on(monkeypatch, digest, exc):
    """Make storing the blob ``digest`` raise ``exc`` (as a full disk would)."""
    from podkit_image_pull._blobs import BlobStore

    real = BlobStore.ensure_resumable

    def ensure(self, d, *args, **kw):
        if d == digest:
            raise exc
        return real(self, d, *args, **kw)

    monkeypatch.setattr(BlobStore, "ensure_resumable", ensure)


def test_a_full_disk_gives_back_what_the_pull_wrote(fake, two_layers, tmp_path, monkeypatch):
    from podkit_image_pull._blobs import BlobStore

    first, second = two_layers.layers[0], two_layers.layers[1]
    BlobStore(tmp_path).put_bytes(first.digest, two_layers.blobs[first.digest])
    _failing_on(monkeypatch, second.digest, ResourceExhausted("no space left on device"))
    with pytest.raises(ResourceExhausted):
        run(fake, tmp_path, max_workers=1)
    # The config (and any other layer) it stored went again; the blob that was there stays.
    assert blob_files(tmp_path) == [first.digest[7:]]


def test_other_failures_keep_the_verified_blobs_to_resume(fake, two_layers, tmp_path,
                                                         monkeypatch):
    second = two_layers.layers[1]
    _failing_on(monkeypatch, second.digest, NotFound("blob unknown"))
    with pytest.raises(NotFound):
        run(fake, tmp_path, max_workers=1)
    assert two_layers.config_digest[7:] in blob_files(tmp_path)
    assert second.digest[7:] not in blob_files(tmp_path)


def test_a_blob_given_back_meanwhile_is_fetched_again(fake, two_layers, tmp_path,
                                                      monkeypatch):
    """A concurrent pull that ran out of space removed a blob this one found present."""
    from podkit_image_pull._blobs import BlobStore

    first = two_layers.layers[0]
    store = BlobStore(tmp_path)
    store.put_bytes(first.digest, two_layers.blobs[first.digest])
    real = BlobStore.put_bytes
    taken: list[str] = []

    def put_bytes(self, digest, data):
        if digest == two_layers.manifest_digest and not taken:
            taken.append(digest)
            self.discard(first.digest)
        return real(self, digest, data)

    monkeypatch.setattr(BlobStore, "put_bytes", put_bytes)
    doc = run(fake, tmp_path)
    for layer in doc["image"]["layers"]:
        assert store.has(layer["digest"])
    assert taken
