"""The pod-image-pull executable, run as a user would: JSON out, envelope and exit code on error."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podkit_common.schemas import SchemaSet
from tests.image_pull.tamper import tampering_proxy
from tests.testbed.registry import free_port

SCHEMA = "urn:podkit:image-pull:image"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["pod-image-pull", *args], env=env, capture_output=True, timeout=120)


def envelope(result: subprocess.CompletedProcess[bytes]) -> dict:
    """The one JSON error line on stderr (validated), with nothing on stdout."""
    assert result.stdout == b""
    lines = [ln for ln in result.stderr.decode().splitlines() if ln.startswith('{"error"')]
    assert len(lines) == 1, result.stderr.decode()
    doc = json.loads(lines[0])
    SchemaSet([]).validate(doc, "urn:podkit:common:error")
    assert doc["error"]["tool"] == "pod-image-pull"
    return doc["error"]


def blob_names(env: dict[str, str]) -> list[str]:
    folder = Path(env["PODKIT_ROOT"]) / "blobs" / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def temp_files(env: dict[str, str]) -> list[Path]:
    folder = Path(env["PODKIT_ROOT"]) / "blobs" / "tmp"
    return list(folder.iterdir()) if folder.is_dir() else []


# --- without a registry -----------------------------------------------------------------

@pytest.mark.e2e
def test_version_does_not_import_httpx(podkit_env):
    code = ("import sys; sys.argv = ['pod-image-pull', '--version']\n"
            "from podkit_image_pull.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'httpx' not in sys.modules, 'httpx imported'\n"
            "import podkit_image_pull\n"
            "assert 'httpx' not in sys.modules, 'package import pulled httpx'\n")
    result = subprocess.run([sys.executable, "-c", code], env=podkit_env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("pod-image-pull version ")


@pytest.mark.e2e
def test_schema_command_prints_the_image_schema(podkit_env):
    result = run(podkit_env, "schema", "image")
    assert result.returncode == 0
    assert json.loads(result.stdout)["$id"] == SCHEMA


@pytest.mark.e2e
@pytest.mark.parametrize("ref", ["docker://127.0.0.1:{port}/busybox@sha256:abc",
                                 "127.0.0.1:{port}/busybox@sha256:" + "A" * 64,
                                 "127.0.0.1:{port}/BusyBox:latest"])
def test_malformed_reference_exits_2_before_any_request(podkit_env, ref):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        result = run(podkit_env, "--tls-verify=false", ref.format(port=listener.getsockname()[1]))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert result.returncode == 2
    assert envelope(result)["type"] == "UsageError"


@pytest.mark.e2e
def test_bad_platform_exits_2(podkit_env):
    result = run(podkit_env, "--platform", "linux", "docker://127.0.0.1:1/busybox")
    assert result.returncode == 2
    assert envelope(result)["type"] == "UsageError"


@pytest.mark.e2e
@pytest.mark.parametrize("tls", [[], ["--tls-verify=false"]])
def test_dead_registry_exits_7(podkit_env, tls):
    result = run(podkit_env, *tls, f"docker://127.0.0.1:{free_port()}/busybox:latest")
    assert result.returncode == 7
    error = envelope(result)
    assert error["type"] == "RemoteError"
    assert "cannot connect" in error["message"] and error["hint"]
    assert blob_names(podkit_env) == []


# --- against the local registry ---------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.registry
@pytest.mark.parametrize("name", ["busybox:latest", "busybox:oci", "busybox:multiarch"])
def test_pull_prints_a_valid_document_and_is_idempotent(images, podkit_env, name):
    first = run(podkit_env, "--tls-verify=false", images.ref(name))
    assert first.returncode == 0, first.stderr.decode()
    doc = json.loads(first.stdout)
    SchemaSet(["podkit_image_pull"]).validate(doc, SCHEMA, what="pull output")
    assert doc["changed"] is True
    assert doc["image"]["root"] == podkit_env["PODKIT_ROOT"]
    for name_ in blob_names(podkit_env):
        path = Path(podkit_env["PODKIT_ROOT"]) / "blobs" / "sha256" / name_
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name_
    second = run(podkit_env, "--no-tls-verify", images.ref(name))
    assert second.returncode == 0, second.stderr.decode()
    again = json.loads(second.stdout)
    assert again["changed"] is False
    assert again["image"] == doc["image"]


@pytest.mark.e2e
@pytest.mark.registry
def test_pull_by_digest_with_platform_and_root_flag(images, podkit_env, tmp_path):
    pushed = images["busybox:multiarch"]
    other = pushed.image.children[1]
    plat = "/".join(filter(None, (other.platform["os"], other.platform["architecture"],
                                  other.platform.get("variant"))))
    root = tmp_path / "elsewhere"
    result = run(podkit_env, "--root", str(root), "pull", pushed.ref_by_digest,
                 "--platform", plat, "--tls-verify=false", "--progress", "json")
    assert result.returncode == 0, result.stderr.decode()
    image = json.loads(result.stdout)["image"]
    assert (image["digest"], image["index_digest"]) == (other.manifest_digest, pushed.digest)
    assert image["root"] == str(root)
    assert blob_names(podkit_env) == []
    progress = [json.loads(ln) for ln in result.stderr.decode().splitlines()]
    assert all("progress" in event for event in progress)


@pytest.mark.e2e
@pytest.mark.registry
def test_plain_http_registry_needs_tls_verify_false(images, podkit_env):
    result = run(podkit_env, images.ref("busybox:latest"))
    assert result.returncode == 7
    assert "--tls-verify=false" in envelope(result)["hint"]


@pytest.mark.e2e
@pytest.mark.registry
def test_unknown_tag_exits_4(images, podkit_env):
    result = run(podkit_env, "--tls-verify=false",
                 f"docker://{images.registry_url}/busybox:no-such-tag")
    assert result.returncode == 4
    assert envelope(result)["type"] == "NotFound"


@pytest.mark.e2e
@pytest.mark.registry
def test_wrong_layer_exits_6_and_stores_no_such_file(images, podkit_env):
    built = images["busybox:oci"].image
    bad = built.layers[-1].digest
    with tampering_proxy(images.registry_url, {bad}) as proxy:
        result = run(podkit_env, "--tls-verify=false", f"docker://{proxy}/busybox:oci")
    assert result.returncode == 6
    error = envelope(result)
    assert error["type"] == "VerificationFailed" and bad in error["message"]
    stored = blob_names(podkit_env)
    assert bad[7:] not in stored and built.manifest_digest[7:] not in stored
    assert temp_files(podkit_env) == []


@pytest.mark.e2e
@pytest.mark.registry
def test_registry_serving_wrong_blobs_leaves_no_file(images, podkit_env):
    with tampering_proxy(images.registry_url) as proxy:
        result = run(podkit_env, "--tls-verify=false", f"docker://{proxy}/busybox:latest")
    assert result.returncode == 6
    assert envelope(result)["type"] == "VerificationFailed"
    assert blob_names(podkit_env) == []
    assert temp_files(podkit_env) == []


@pytest.mark.e2e
@pytest.mark.registry
def test_concurrent_pulls_of_one_image_share_the_store(images, podkit_env):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(
            lambda _: run(podkit_env, "--tls-verify=false", images.ref("busybox:oci")), range(4)))
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    docs = [json.loads(r.stdout) for r in results]
    assert len({json.dumps(d["image"], sort_keys=True) for d in docs}) == 1
    assert sum(d["changed"] for d in docs) >= 1
    for name in blob_names(podkit_env):
        path = Path(podkit_env["PODKIT_ROOT"]) / "blobs" / "sha256" / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name
    assert temp_files(podkit_env) == []
