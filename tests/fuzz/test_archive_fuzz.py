"""Archives from anywhere: docker-archive files with random manifest.json and config
(pod-image-pull docker-archive:FILE, what `pod load` runs), and hostile filesystem tars
on `pod-storage import-tarball -` (what `pod import` runs). In-process through the
CLIs: success or the JSON envelope with a documented exit code, every blob stored named
by its own sha256, nothing written outside the roots."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.inproc import assert_clean_outcome, run_inproc
from tests.fuzz.strategies import FUZZ, examples, json_values, mutated
from tests.fuzz.tarstreams import layer_streams
from tests.storage.test_extract import snapshot

pytestmark = [pytest.mark.root]


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    return out.getvalue()


LAYER = _layer()
DIFF_ID = "sha256:" + hashlib.sha256(LAYER).hexdigest()
CONFIG = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
          "rootfs": {"type": "layers", "diff_ids": [DIFF_ID]}}
MANIFEST = [{"Config": "config.json", "RepoTags": ["localhost/fuzz:1"],
             "Layers": ["layer.tar"]}]


def _archive(path: Path, manifest, config) -> None:
    members = {"manifest.json": json.dumps(manifest).encode(),
               "config.json": json.dumps(config).encode(), "layer.tar": LAYER}
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _roots(podkit_env: dict) -> list[str]:
    return ["--root", podkit_env["PODKIT_ROOT"], "--runroot", podkit_env["PODKIT_RUNROOT"],
            "--quiet"]


def _blobs_verify(root: Path) -> None:
    blobs = root / "blobs" / "sha256"
    for blob in (blobs.iterdir() if blobs.is_dir() else []):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob


def test_docker_archives_with_random_manifests(tmp_path, podkit_env):
    archive = tmp_path / "in" / "image.tar"
    archive.parent.mkdir()
    root = Path(podkit_env["PODKIT_ROOT"])
    _archive(archive, MANIFEST, CONFIG)
    first = run_inproc("pod-image-pull", [*_roots(podkit_env), f"docker-archive:{archive}"])
    assert first.code == 0, first.stderr  # the template itself loads
    safe = ["config.json", "layer.tar", "manifest.json", "../layer.tar", "/layer.tar", "",
            DIFF_ID, "sha256:" + "0" * 64, "localhost/fuzz:1", "fuzz", "amd64", "linux"]

    @settings(FUZZ, max_examples=examples(40))
    @given(manifest=st.one_of(mutated({"m": MANIFEST}, safe).map(lambda d: d.get("m")),
                              json_values),
           config=st.one_of(st.just(CONFIG), mutated(CONFIG, safe)))
    def check(manifest, config):
        _archive(archive, manifest, config)
        out = run_inproc("pod-image-pull", [*_roots(podkit_env), f"docker-archive:{archive}"])
        assert_clean_outcome(out)
        _blobs_verify(root)

    check()


def test_hostile_tars_on_import_tarball(tmp_path, podkit_env):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel").write_bytes(b"do not touch\n")
    kept = (Path(podkit_env["PODKIT_ROOT"]), Path(podkit_env["PODKIT_RUNROOT"]))

    def around() -> dict:
        snap = snapshot(tmp_path)
        return {k: v for k, v in snap.items()
                if not any((tmp_path / k) == p or p in (tmp_path / k).parents for p in kept)
                and k != "."}

    before = around()

    @settings(FUZZ, max_examples=examples(30))
    @given(stream=layer_streams(str(outside)))
    def check(stream):
        out = run_inproc("pod-storage", [*_roots(podkit_env), "import-tarball", "-"],
                         stream.data())
        assert_clean_outcome(out)
        assert around() == before

    check()
